package e2e

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// The uplink between the host and the outside world (TEST-NET-3): the
// outside host, and the host's own address on that network.
const (
	outsideAddr = "203.0.113.1"
	uplinkAddr  = "203.0.113.2"
)

// readmeMarker precedes the README's block of host commands that
// TestRoutedGuest runs.
const readmeMarker = "<!-- test/e2e TestRoutedGuest runs the commands of the next block. -->"

// readmeHostCommands is the README's indented code block after the marker,
// with the packaged example's path turned into the source tree's.
func readmeHostCommands(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), readmeMarker)
	if !ok {
		t.Fatalf("README.md lacks the line %q", readmeMarker)
	}
	var cmds []string
	sc := bufio.NewScanner(strings.NewReader(after))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "    ") {
			cmds = append(cmds, strings.TrimPrefix(line, "    "))
		} else if len(cmds) > 0 && strings.TrimSpace(line) != "" {
			break
		}
	}
	if len(cmds) == 0 {
		t.Fatal("README.md: no code block after the TestRoutedGuest marker")
	}
	script := strings.Join(cmds, "\n") + "\n"
	return strings.ReplaceAll(script, "/usr/share/doc/qemu-tap-helpers/examples/", filepath.Join(root, "packaging/examples")+"/")
}

// TestRoutedGuest is the README's last step: on a host set up with the
// README's ip and nft commands, the guest reaches a host on another network
// through the host's routing and masquerade, and that outside host cannot
// reach the guest unasked. The host is a test namespace whose default
// route leaves through a veth to a second namespace, the outside world.
func TestRoutedGuest(t *testing.T) {
	nstest.RequireTool(t, "nft", "nftables")
	nstest.RequireTool(t, "sysctl", "procps")
	nstest.RequireTool(t, "ip", "iproute2")
	host, g := setup(t)
	outside := nstest.New(t)
	bin := nstest.Binaries(t)
	root, err := nstest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}

	// The uplink: uplink0 in the host, eth0 in the outside world.
	outsideNS, err := netns.GetFromName(outside.Name)
	if err != nil {
		t.Fatalf("open netns %s: %v", outside.Name, err)
	}
	defer outsideNS.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(outsideNS)}
	if err := host.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("add veth uplink0 in %s, eth0 in %s: %v", host.Name, outside.Name, err)
	}
	addrUp := func(ns *nstest.NS, name, cidr string) {
		t.Helper()
		l := ns.Link(t, name)
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.Handle.AddrAdd(l, a); err != nil {
			t.Fatalf("add %s to %s in %s: %v", cidr, name, ns.Name, err)
		}
		if err := ns.Handle.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up in %s: %v", name, ns.Name, err)
		}
	}
	addrUp(host, "uplink0", uplinkAddr+"/24")
	addrUp(outside, "eth0", outsideAddr+"/24")
	// The host's own way out, as a real host has one.
	if err := host.Handle.RouteAdd(&netlink.Route{Gw: netParseIP(t, outsideAddr)}); err != nil {
		t.Fatalf("default route via %s in %s: %v", outsideAddr, host.Name, err)
	}

	// The README's commands, run as its reader runs them.
	script := readmeHostCommands(t, root)
	t.Logf("README's host commands:\n%s", script)
	cmd := exec.Command("sh", "-ec", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := host.Run(cmd); err != nil {
		t.Fatalf("README's host commands in %s: %v\n%s", host.Name, err, out.String())
	}

	args := append([]string{qemuBinary}, baseArgs(g, guest.Config{Ping: []string{outsideAddr}, Answer: pings})...)
	args = append(args,
		"-device", "virtio-net-pci,netdev=vm0",
		"-netdev", "tap,id=vm0,script="+bin+"/qemu-ifup,downscript="+bin+"/qemu-ifdown")
	v := startVM(t, host, helperEnv(t.TempDir()), args...)
	v.ready(t)

	// Out: the outside world has no route to 192.168.122.0/24, so only
	// the host's masquerade gets the answers back to the guest.
	r, err := v.console.Wait("ping "+outsideAddr+" ", bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r, "ping "+outsideAddr+" ok") {
		t.Errorf("guest could not reach the outside host through the host: %q", r)
	}

	// In, unasked: even an outside world that routes the guests' subnet
	// to the host gets nothing through.
	if err := outside.Handle.RouteAdd(&netlink.Route{Dst: netParseCIDR(t, "192.168.122.0/24"), Gw: netParseIP(t, uplinkAddr)}); err != nil {
		t.Fatalf("route to the guests via the host in %s: %v", outside.Name, err)
	}
	probe := exec.Command("busybox", "ping", "-c", "3", "-w", "5", guestAddr)
	out.Reset()
	probe.Stdout, probe.Stderr = &out, &out
	err = outside.Run(probe)
	if m := received.FindStringSubmatch(out.String()); err == nil || m == nil || m[1] != "0" {
		t.Errorf("the outside host reached the guest unasked (%v):\n%s", err, out.String())
	}

	// The host itself still reaches its guest.
	hostPing(t, host, guestAddr, pings)
	v.passed(t)
}

func netParseIP(t *testing.T, s string) net.IP {
	t.Helper()
	ip := net.ParseIP(s)
	if ip == nil {
		t.Fatalf("bad address %q", s)
	}
	return ip
}

func netParseCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
