package launch

import (
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestHostMTU: qemu-launch tells a virtio-net NIC the MTU qemu-ifup will
// give its tap when it is not 1500 (a jumbo bridge's here), leaves a NIC
// on a 1500-byte bridge alone, and warns for a NIC model it cannot tell.
func TestHostMTU(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-jumbo", 9000)
	ns.AddBridge(t, "br-std", 0)
	l := start(t, ns, nil, "--dry-run", "--bridge", "br-jumbo", "--bridge", "n2=br-std", "--", qemu, "-name", "mtu",
		"-netdev", "tap,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01",
		"-netdev", "tap,id=n1", "-device", "e1000,netdev=n1,mac=52:54:00:00:00:02",
		"-netdev", "tap,id=n2", "-device", "virtio-net-pci,netdev=n2,mac=52:54:00:00:00:03")
	if code := l.wait(); code != 0 {
		t.Fatalf("qemu-launch --dry-run: exit %d\nstderr:\n%s", code, l.stderr.String())
	}
	argv, _, _ := strings.Cut(l.stdout.String(), "\n")
	for _, want := range []string{
		" virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,host_mtu=9000 ",
		" e1000,netdev=n1,mac=52:54:00:00:00:02 ",
		" virtio-net-pci,netdev=n2,mac=52:54:00:00:00:03 ",
	} {
		if !strings.Contains(argv+" ", want) {
			t.Errorf("QEMU's command line lacks %q:\n%s", want, argv)
		}
	}
	if !strings.Contains(l.stdout.String(), "netdev n0: qemu-ifup gives the tap MTU 9000; a virtio-net NIC on it learns it (host_mtu)") {
		t.Errorf("the dry run does not say what n0's MTU is:\n%s", l.stdout.String())
	}
	warn := "qemu-launch: warning: netdev n1: tap MTU 9000, but NIC model e1000 cannot be told it: set the guest's MTU to 9000 (DHCP's MTU option, or in the guest)\n"
	if l.stderr.String() != warn {
		t.Errorf("stderr %q, want %q", l.stderr.String(), warn)
	}
}
