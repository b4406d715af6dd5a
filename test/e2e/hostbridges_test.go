package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// A peer is one guest of a test with several: its tap (named so that the
// test's config rules match it), MAC and address on 192.168.122.0/24.
type peer struct {
	tap, mac, addr string
}

var (
	peerA = peer{"ga", "52:54:00:00:00:0a", "192.168.122.10"}
	peerB = peer{"gb", "52:54:00:00:00:0b", "192.168.122.11"}
	peerC = peer{"gc", "52:54:00:00:00:0c", "192.168.122.12"}
)

// startPeer boots a guest on p's tap with the seed's script wiring, under
// the test's config (dir/qemu-ifup.conf) and env.
func startPeer(t *testing.T, ns *nstest.NS, g guest.Files, env []string, p peer, c guest.Config) *vm {
	t.Helper()
	bin := nstest.Binaries(t)
	c.Addrs = []string{p.addr + "/24"}
	args := append([]string{qemuBinary}, baseArgs(g, c)...)
	args = append(args, "-device", "virtio-net-pci,netdev=n0,mac="+p.mac,
		"-netdev", "tap,id=n0,ifname="+p.tap+",script="+bin+"/qemu-ifup,downscript="+bin+"/qemu-ifdown")
	return startVM(t, ns, env, args...)
}

// launchPeer boots a guest on p's tap through qemu-launch, which wires the
// helpers and records the VM's name and the guest's MAC for qemu-ifup.
func launchPeer(t *testing.T, ns *nstest.NS, g guest.Files, env []string, name string, p peer, c guest.Config) *vm {
	t.Helper()
	c.Addrs = []string{p.addr + "/24"}
	args := append([]string{launcher(t), "--", qemuBinary, "-name", name}, baseArgs(g, c)...)
	args = append(args, "-device", "virtio-net-pci,netdev=n0,mac="+p.mac, "-netdev", "tap,id=n0,ifname="+p.tap)
	return startVM(t, ns, env, args...)
}

// reported checks that the guest's reports include one starting with each
// of want.
func reported(t *testing.T, name string, v *vm, want ...string) {
	t.Helper()
	for _, w := range want {
		if !hasReport(v.console.Reports(), w) {
			t.Errorf("guest %s did not report %q: %q", name, w, v.console.Reports())
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOVSVLANs boots three guests on one Open vSwitch bridge (a private
// ovsdb-server and ovs-vswitchd, userspace datapath, in the test's
// namespace): A and B are access ports of VLAN 10, C of VLAN 20, set by
// VLAN= in qemu-ifup.conf; B runs under qemu-launch. A reaches B and not C;
// every port is gone from the bridge after the guests stop.
func TestOVSVLANs(t *testing.T) {
	ns, g := setup(t)
	sw := ns.StartOVS(t)
	sw.AddBridge(t, "ovsbr0")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "qemu-ifup.conf"),
		"[Defaults]\nBridge=ovsbr0\n\n[Interface]\nName=ga gb\nVLAN=10\n\n[Interface]\nName=gc\nVLAN=20\n")
	env := append(helperEnv(dir), "QEMU_OVS_DB="+sw.DB)

	// B answers A's pings; C waits for pings that must never come, until
	// the test stops it.
	b := launchPeer(t, ns, g, env, "peer-b", peerB, guest.Config{Gateway: "none", Ping: []string{"none"}, Answer: pings})
	c := startPeer(t, ns, g, env, peerC, guest.Config{Gateway: "none", Ping: []string{"none"}, Answer: 1,
		Timeout: 5 * time.Minute})
	b.ready(t)
	c.ready(t)
	for tap, tag := range map[string]string{"gb": "10", "gc": "20"} {
		if got := sw.Vsctl(t, "get", "Port", tap, "tag"); got != tag {
			t.Errorf("OVS port %s: tag %s, want %s", tap, got, tag)
		}
	}
	// B runs under qemu-launch, which knows the VM's name and the guest's
	// MAC: OVS has them as the port's external-ids.
	want := `{attached-mac="` + peerB.mac + `", vm-name=peer-b}`
	if got := sw.Vsctl(t, "get", "Interface", "gb", "external-ids"); got != want {
		t.Errorf("OVS interface gb: external-ids %s, want %s", got, want)
	}
	a := startPeer(t, ns, g, env, peerA, guest.Config{Gateway: "none", Ping: []string{peerB.addr, peerC.addr},
		Timeout: 20 * time.Second})
	a.wait(t)
	reported(t, "A", a, "ping "+peerB.addr+" ok", "ping "+peerC.addr+" fail 0/")
	// B pings nobody: it passes by answering A's pings.
	if err := b.wait(t); err != nil {
		t.Errorf("guest B: %v", err)
	}
	if err := b.console.Result(); err != nil {
		t.Errorf("guest B: %v", err)
	}
	// QEMU stopped by SIGTERM runs the down-script, as on a host's shutdown.
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.wait(t)
	if r := c.console.Reports(); hasReport(r, "answered") {
		t.Errorf("guest C on VLAN 20 was reached: %q", r)
	}
	if left := sw.Vsctl(t, "list-ports", "ovsbr0"); left != "" {
		t.Errorf("ports left on ovsbr0 after the guests stopped: %q", left)
	}
}

// TestIsolatedPorts boots two guests on one Linux bridge that holds the
// host's address: with Isolated=yes on both ports each pings the host but
// not the other; without it they ping each other.
func TestIsolatedPorts(t *testing.T) {
	for _, isolated := range []bool{true, false} {
		name := "isolated"
		if !isolated {
			name = "not isolated"
		}
		t.Run(name, func(t *testing.T) {
			ns, g := setup(t)
			addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
			dir := t.TempDir()
			if isolated {
				writeFile(t, filepath.Join(dir, "qemu-ifup.conf"), "[Interface]\nName=ga gb\nIsolated=yes\n")
			}
			env := helperEnv(dir)
			// B stays up until it has answered the host and, where
			// they reach it, A's pings too.
			answer := pings
			if !isolated {
				answer += pings
			}
			b := startPeer(t, ns, g, env, peerB, guest.Config{Ping: []string{hostAddr}, Answer: answer})
			b.ready(t)
			a := startPeer(t, ns, g, env, peerA, guest.Config{Ping: []string{hostAddr, peerB.addr}, Answer: pings,
				Timeout: 20 * time.Second})
			a.ready(t)
			for _, tap := range []string{"ga", "gb"} {
				checkPort(t, ns, tap, "virbr0")
				if got := portFlags(t, ns, tap).Isolated; got != isolated {
					t.Errorf("%s: isolated %v in the kernel, want %v", tap, got, isolated)
				}
			}
			hostPing(t, ns, peerA.addr, pings)
			hostPing(t, ns, peerB.addr, pings)
			a.wait(t)
			b.passed(t)
			reported(t, "A", a, "ping "+hostAddr+" ok")
			if isolated {
				reported(t, "A", a, "ping "+peerB.addr+" fail 0/")
			} else {
				reported(t, "A", a, "ping "+peerB.addr+" ok")
				if err := a.console.Result(); err != nil {
					t.Error(err)
				}
			}
			if p := ports(t, ns, "virbr0"); len(p) != 0 {
				t.Errorf("ports left on virbr0 after the guests stopped: %q", p)
			}
		})
	}
}

// portFlags reads a bridge port's flags as the kernel reports them.
func portFlags(t *testing.T, ns *nstest.NS, tap string) struct{ Isolated, Learning, Flood bool } {
	t.Helper()
	pi, err := ns.Handle.LinkGetProtinfo(ns.Link(t, tap))
	if err != nil {
		t.Fatalf("protinfo of %s: %v", tap, err)
	}
	return struct{ Isolated, Learning, Flood bool }{pi.Isolated, pi.Learning, pi.Flood}
}
