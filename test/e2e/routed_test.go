package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// A routedHost is a host namespace whose default route leaves through a
// veth (uplink0, 203.0.113.2) to a second namespace standing for the
// outside world (eth0, 203.0.113.1), which has no route back to the
// guests' 192.168.122.0/24.
type routedHost struct {
	host, outside *nstest.NS
	g             guest.Files
	bin, root     string
}

func newRoutedHost(t *testing.T) routedHost {
	t.Helper()
	host, g := setup(t)
	r := routedHost{host: host, outside: nstest.New(t), g: g, bin: nstest.Binaries(t)}
	var err error
	if r.root, err = nstest.ModuleRoot(); err != nil {
		t.Fatal(err)
	}
	outsideNS, err := netns.GetFromName(r.outside.Name)
	if err != nil {
		t.Fatalf("open netns %s: %v", r.outside.Name, err)
	}
	defer outsideNS.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(outsideNS)}
	if err := host.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("add veth uplink0 in %s, eth0 in %s: %v", host.Name, r.outside.Name, err)
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
	addrUp(r.outside, "eth0", outsideAddr+"/24")
	// The host's own way out, as a real host has one.
	if err := host.Handle.RouteAdd(&netlink.Route{Gw: netParseIP(t, outsideAddr)}); err != nil {
		t.Fatalf("default route via %s in %s: %v", outsideAddr, host.Name, err)
	}
	return r
}

// bootGuest starts the guest on virbr0 with the helpers as its scripts
// and waits until it has pinged the outside host, which must answer: the
// outside world has no route to 192.168.122.0/24, so only the host's
// masquerade gets the answers back to the guest.
func (r routedHost) bootGuest(t *testing.T) *vm {
	t.Helper()
	args := append([]string{qemuBinary}, baseArgs(r.g, guest.Config{Ping: []string{outsideAddr}, Answer: pings})...)
	args = append(args,
		"-device", "virtio-net-pci,netdev=vm0",
		"-netdev", "tap,id=vm0,script="+r.bin+"/qemu-ifup,downscript="+r.bin+"/qemu-ifdown")
	v := startVM(t, r.host, helperEnv(t.TempDir()), args...)
	v.ready(t)
	rep, err := v.console.Wait("ping "+outsideAddr+" ", bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep, "ping "+outsideAddr+" ok") {
		t.Errorf("guest could not reach the outside host through the host: %q", rep)
	}
	return v
}

// TestRoutedGuest is the README's last step: on a host set up with the
// README's ip and nft commands, the guest reaches a host on another network
// through the host's routing and masquerade, and that outside host cannot
// reach the guest unasked.
func TestRoutedGuest(t *testing.T) {
	nstest.RequireTool(t, "nft", "nftables")
	nstest.RequireTool(t, "sysctl", "procps")
	nstest.RequireTool(t, "ip", "iproute2")
	r := newRoutedHost(t)

	// The README's commands, run as its reader runs them.
	script := readmeHostCommands(t, r.root)
	t.Logf("README's host commands:\n%s", script)
	cmd := exec.Command("sh", "-ec", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := r.host.Run(cmd); err != nil {
		t.Fatalf("README's host commands in %s: %v\n%s", r.host.Name, err, out.String())
	}

	v := r.bootGuest(t)

	// In, unasked: even an outside world that routes the guests' subnet
	// to the host gets nothing through.
	if err := r.outside.Handle.RouteAdd(&netlink.Route{Dst: netParseCIDR(t, "192.168.122.0/24"), Gw: netParseIP(t, uplinkAddr)}); err != nil {
		t.Fatalf("route to the guests via the host in %s: %v", r.outside.Name, err)
	}
	probe := exec.Command("busybox", "ping", "-c", "3", "-w", "5", guestAddr)
	out.Reset()
	probe.Stdout, probe.Stderr = &out, &out
	err := r.outside.Run(probe)
	if m := received.FindStringSubmatch(out.String()); err == nil || m == nil || m[1] != "0" {
		t.Errorf("the outside host reached the guest unasked (%v):\n%s", err, out.String())
	}

	// The host itself still reaches its guest.
	hostPing(t, r.host, guestAddr, pings)
	v.passed(t)
}

// networkdScript runs systemd-networkd in the calling network namespace
// with nothing of the machine's own configuration: a private mount
// namespace hides /run/systemd and every networkd configuration directory
// behind empty ones, puts the shipped example files in /run/systemd/network,
// and mounts this namespace's sysfs read-only (networkd then does not wait
// for udev, which does not run here).
const networkdScript = `set -e
mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }
for d in /etc/systemd/network /usr/lib/systemd/network /lib/systemd/network; do
	if [ -d "$d" ]; then mount -t tmpfs tmpfs "$d"; fi
done
mkdir -p /run/systemd/network /run/systemd/netif
cp "$1"/virbr0.netdev "$1"/virbr0.network /run/systemd/network/
chown systemd-network: /run/systemd/netif
mount -t sysfs -o ro sysfs /sys
exec "$2"
`

// TestRoutedGuestNetworkd is the README's systemd-networkd way to a bridge:
// systemd-networkd, with the example files the package ships and nothing
// else, makes virbr0 192.168.122.1/24 with masquerade on a host whose
// uplink leads to the outside world, and the guest reaches the outside host
// through it.
func TestRoutedGuestNetworkd(t *testing.T) {
	const networkd = "/lib/systemd/systemd-networkd"
	nstest.RequireTool(t, networkd, "systemd")
	nstest.RequireTool(t, "unshare", "util-linux")
	nstest.RequireTool(t, "nft", "nftables")
	r := newRoutedHost(t)

	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", networkdScript,
		"sh", filepath.Join(r.root, "packaging/examples/networkd"), networkd)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := r.host.Start(cmd); err != nil {
		t.Fatalf("start systemd-networkd in %s: %v", r.host.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("systemd-networkd:\n%s", log.String())
		}
	})

	// networkd configures virbr0 in its own time: wait for the address,
	// forwarding and the masquerade table, as a booted host has them.
	deadline := time.Now().Add(bootTimeout)
	for {
		err := r.networkdReady()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			t.Fatalf("systemd-networkd exited (%v) before %v:\n%s", werr, err, log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-networkd did not set up the host within %v: %v\n%s", bootTimeout, err, log.String())
		}
	}

	v := r.bootGuest(t)
	hostPing(t, r.host, guestAddr, pings)
	v.passed(t)
}

// networkdReady says what systemd-networkd has not set up yet: virbr0 up
// with 192.168.122.1/24, IPv4 forwarding, a masquerade rule.
func (r routedHost) networkdReady() error {
	br, err := r.host.Handle.LinkByName("virbr0")
	if err != nil {
		return fmt.Errorf("virbr0: %w", err)
	}
	if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("virbr0 is a %s, flags %v: want an up bridge", br.Type(), br.Attrs().Flags)
	}
	addrs, err := r.host.Handle.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == hostAddr+"/24" }) {
		return fmt.Errorf("virbr0 has %v, want %s/24", addrs, hostAddr)
	}
	var fwd []byte
	if err := r.host.Do(func() (err error) {
		fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		return err
	}); err != nil {
		return err
	}
	if strings.TrimSpace(string(fwd)) != "1" {
		return errors.New("IPv4 forwarding is off")
	}
	var out bytes.Buffer
	nft := exec.Command("nft", "list", "ruleset")
	nft.Stdout, nft.Stderr = &out, &out
	if err := r.host.Run(nft); err != nil || !strings.Contains(out.String(), "masquerade") {
		return fmt.Errorf("no masquerade rule yet (%v): %s", err, out.String())
	}
	return nil
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
