package bridge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestIntegrationOVN runs against an OVN lab of two chassis: reading a
// chassis' settings, the MTU that fits its tunnel, waiting for a port
// to be installed, and each reason WhyNotInstalled gives when one is not.
func TestIntegrationOVN(t *testing.T) {
	lab := nstest.NewOVNLab(t, "geneve")
	hv1 := lab.AddHypervisor(t, "hv1")
	hv2 := lab.AddHypervisor(t, "hv2")
	lab.Nbctl(t, "ls-add", "ls0")
	for _, p := range []string{"p1", "p2", "p3"} {
		lab.Nbctl(t, "lsp-add", "ls0", p)
	}
	hv2.AddPort(t, "vm2", "p2", "02:00:00:00:01:02", "192.168.122.22/24", 1442)
	o := &OVS{DB: hv1.OVS.DB, Env: hv1.Env}
	// Run in hv1's namespace, where the southbound database is reached.
	in := func(fn func()) {
		t.Helper()
		if err := hv1.Do(func() error { fn(); return nil }); err != nil {
			t.Fatal(err)
		}
	}

	c, err := o.Chassis()
	if err != nil || c == nil {
		t.Fatalf("Chassis() = %v, %v", c, err)
	}
	if c.SystemID != "hv1" || c.Remote != lab.Remote || strings.Join(c.Encaps, ",") != "geneve" ||
		len(c.EncapIPs) != 1 || c.EncapIPs[0].String() != hv1.IP {
		t.Errorf("Chassis() = %+v", c)
	}
	m, err := c.OverlayMTU(hv1.Conn)
	if err != nil || m.MTU != nstest.OVNUnderlayMTU-GeneveOverhead || m.Encap != "br-phy" {
		t.Errorf("OverlayMTU() = %v, %v; want %d on br-phy", m, err, nstest.OVNUnderlayMTU-GeneveOverhead)
	}

	hv1.AddTap(t, "t1")
	hv1.Vsctl(t, "add-port", "br-int", "t1", "--", "set", "Interface", "t1", "external_ids:iface-id=p1")
	if err := o.WaitInstalled("t1", 30*time.Second); err != nil {
		t.Errorf("WaitInstalled(t1): %v", err)
	}

	hv1.AddTap(t, "t9")
	hv1.Vsctl(t, "add-port", "br-int", "t9", "--", "set", "Interface", "t9", "external_ids:iface-id=nosuch")
	if err := o.WaitInstalled("t9", time.Second); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("WaitInstalled(t9) for a port OVN does not know: %v, want ErrNotInstalled", err)
	}
	for _, tc := range []struct{ lsp, want string }{
		{"nosuch", "logical port nosuch is not in the northbound database"},
		{"p2", "logical port p2 is bound to chassis hv2, not to this host (system-id hv1)"},
		{"p1", "logical port p1 is bound to this chassis (hv1)"},
	} {
		in(func() {
			if got := o.WhyNotInstalled(c, tc.lsp); !strings.HasPrefix(got, tc.want) {
				t.Errorf("WhyNotInstalled(%s) = %q, want %q...", tc.lsp, got, tc.want)
			}
		})
	}

	hv1.StopController(t)
	in(func() {
		if got := o.WhyNotInstalled(c, "p3"); !strings.HasPrefix(got, "no ovn-controller runs on this host") {
			t.Errorf("WhyNotInstalled(p3) without ovn-controller = %q", got)
		}
	})
}

// TestIntegrationNotChassis: an Open vSwitch without ovn-remote is no
// chassis.
func TestIntegrationNotChassis(t *testing.T) {
	ns := nstest.New(t)
	sw := ns.StartOVS(t)
	c, err := (&OVS{DB: sw.DB}).Chassis()
	if c != nil || err != nil {
		t.Errorf("Chassis() = %+v, %v; want nil, nil", c, err)
	}
}
