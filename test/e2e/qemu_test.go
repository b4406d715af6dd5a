package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// The seed's addresses: virbr0 on the host, eth0 in the guest.
const (
	hostAddr  = "192.168.122.1"
	guestAddr = "192.168.122.10"
	pings     = 3
)

// TestSeedProcedure is the users' procedure with plain QEMU: the seed's
// -netdev tap wiring with our helpers as script= and downscript=.
func TestSeedProcedure(t *testing.T) {
	for _, model := range []string{"e1000", "virtio-net-pci"} {
		t.Run(model, func(t *testing.T) {
			ns, g := setup(t)
			bin := nstest.Binaries(t)
			// A bridge MTU other than a tap's default, so that the
			// MTU check below can fail.
			addBridge(t, ns, "virbr0", hostAddr+"/24", 9000)

			args := append([]string{qemuBinary}, baseArgs(g, guest.Config{Answer: pings})...)
			args = append(args,
				"-device", model+",netdev=vm0",
				"-netdev", "tap,id=vm0,script="+bin+"/qemu-ifup,downscript="+bin+"/qemu-ifdown")
			v := startVM(t, ns, helperEnv(t.TempDir()), args...)
			v.ready(t)

			tap := pingsOnBridge(t, ns, v, "virbr0")
			if p := ports(t, ns, "virbr0"); len(p) != 0 {
				t.Errorf("ports left on virbr0 after the guest stopped: %q", p)
			}
			// The helpers ran and said so (stderr is QEMU's: no journal here).
			log := v.stderr.String()
			for _, want := range []string{"qemu-ifup: " + tap + ": attach to virbr0", "qemu-ifdown: " + tap + ": detach from virbr0"} {
				if !strings.Contains(log, want) {
					t.Errorf("QEMU's stderr lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

// twoNICs is the guest of the per-NIC bridge tests: eth0 on 192.168.122.0/24,
// eth1 on 192.168.123.0/24.
var twoNICs = guest.Config{
	Addrs:  []string{guestAddr + "/24", "192.168.123.10/24"},
	Ping:   []string{hostAddr, "192.168.123.1"},
	Answer: 2 * pings,
}

// twoNICArgs are the NICs of netdevs a and b; tapOpts adds to each -netdev.
// Same model twice: PCI order makes a's NIC eth0 in the guest, so the
// pings of pingBoth only work if each tap is on its own bridge.
func twoNICArgs(tapOpts func(id string) string) []string {
	var a []string
	for _, id := range []string{"a", "b"} {
		a = append(a, "-device", "virtio-net-pci,netdev="+id, "-netdev", "tap,id="+id+tapOpts(id))
	}
	return a
}

// TestBridgePerNIC puts a guest's two NICs on two bridges, each tap on its
// own, by /etc/qemu-ifup.conf rules on the tap names.
func TestBridgePerNIC(t *testing.T) {
	ns, g := setup(t)
	bin := nstest.Binaries(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
	addBridge(t, ns, "virbr1", "192.168.123.1/24", 0)
	dir := t.TempDir()
	rules := "[Interface]\nName=vm-a\nBridge=virbr0\n\n[Interface]\nName=vm-b\nBridge=virbr1\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-ifup.conf"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{qemuBinary}, baseArgs(g, twoNICs)...)
	// Tap names the rules match, and the seed's scripts.
	args = append(args, twoNICArgs(func(id string) string {
		return ",ifname=vm-" + id + ",script=" + bin + "/qemu-ifup,downscript=" + bin + "/qemu-ifdown"
	})...)
	v := startVM(t, ns, helperEnv(dir), args...)
	v.ready(t)
	checkPort(t, ns, "vm-a", "virbr0")
	checkPort(t, ns, "vm-b", "virbr1")
	pingBoth(t, ns, v)
}

// pingBoth pings the two-NIC guest on both bridges and checks that it
// powers off and leaves the bridges without ports.
func pingBoth(t *testing.T, ns *nstest.NS, v *vm) {
	t.Helper()
	hostPing(t, ns, guestAddr, pings)
	hostPing(t, ns, "192.168.123.10", pings)
	v.passed(t)
	for _, br := range []string{"virbr0", "virbr1"} {
		if p := ports(t, ns, br); len(p) != 0 {
			t.Errorf("ports left on %s after the guest stopped: %q", br, p)
		}
	}
}

// TestNoBridge: without virbr0, qemu-ifup fails, QEMU refuses to start,
// the user reads why, and nothing is left behind.
func TestNoBridge(t *testing.T) {
	ns, g := setup(t)
	bin := nstest.Binaries(t)
	args := append([]string{qemuBinary}, baseArgs(g, guest.Config{})...)
	args = append(args, "-device", "e1000,netdev=vm0",
		"-netdev", "tap,id=vm0,script="+bin+"/qemu-ifup,downscript="+bin+"/qemu-ifdown")
	refused(t, ns, helperEnv(t.TempDir()), args)
}

// refused runs args in ns, where virbr0 is missing, and checks that they
// fail before the guest boots, saying why, and leave no tap behind.
func refused(t *testing.T, ns *nstest.NS, env, args []string) {
	t.Helper()
	v := startVM(t, ns, env, args...)
	if err := v.wait(t); err == nil {
		t.Fatalf("%s exited 0 without virbr0, want a failure", args[0])
	}
	log := v.stderr.String()
	// Ours, then QEMU's "network script .../qemu-ifup failed with status 256".
	for _, want := range []string{"qemu-ifup: ", "virbr0", "/qemu-ifup failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
	if r := v.console.Reports(); len(r) != 0 {
		t.Errorf("the guest ran: %q", r)
	}
	if left := ns.Taps(t); len(left) != 0 {
		t.Errorf("taps left in %s: %q", ns.Name, left)
	}
}
