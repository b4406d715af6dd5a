package bridge

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestIntegrationOVSPort drives a private Open vSwitch (userspace
// datapath) inside a throwaway namespace: recognising bridges, adding a
// port with its settings, converging on a re-run, moving, removing twice.
func TestIntegrationOVSPort(t *testing.T) {
	ns := nstest.New(t)
	sw := ns.StartOVS(t)
	sw.AddBridge(t, "ovsbr0")
	sw.AddBridge(t, "ovsbr1")
	ns.AddBridge(t, "linbr0", 0)
	tap := ns.AddTap(t, "t0")
	o := &OVS{DB: sw.DB}

	for name, want := range map[string]bool{"ovsbr0": true, "ovsbr1": true, "linbr0": false, "nosuch": false, "t0": false} {
		got, err := o.IsOVSBridge(name)
		if err != nil || got != want {
			t.Errorf("IsOVSBridge(%s) = %v, %v, want %v", name, got, err, want)
		}
	}
	if br, err := o.PortBridge("t0"); err != nil || br != "" {
		t.Fatalf("PortBridge(t0) before = %q, %v, want \"\"", br, err)
	}
	if p, err := portOf(o, "t0", "vm-id", "attached-mac"); err != nil || p != nil {
		t.Fatalf("portOf(t0) before = %+v, %v, want nil", p, err)
	}

	steps := []struct {
		name string
		p    OVSPort
		move bool
	}{
		{"access port", OVSPort{Bridge: "ovsbr0", Name: "t0", Tag: 10, MTU: 1400,
			ExternalIDs: map[string]string{"vm-id": "guest one", "attached-mac": "52:54:00:12:34:56"}}, false},
		{"same again", OVSPort{Bridge: "ovsbr0", Name: "t0", Tag: 10, MTU: 1400,
			ExternalIDs: map[string]string{"vm-id": "guest one", "attached-mac": "52:54:00:12:34:56"}}, false},
		{"reconfigured to a trunk", OVSPort{Bridge: "ovsbr0", Name: "t0", Trunks: []int{20, 30}, VLANMode: VLANTrunk, MTU: 1450,
			ExternalIDs: map[string]string{"vm-id": "guest one", "attached-mac": "52:54:00:12:34:56"}}, false},
		// A VM file's LogicalPort= may hold ovs-vsctl's own syntax: it
		// stays one value.
		{"values in ovs-vsctl's syntax", OVSPort{Bridge: "ovsbr0", Name: "t0", Trunks: []int{20, 30}, VLANMode: VLANTrunk, MTU: 1450,
			ExternalIDs: map[string]string{"vm-id": "--x,attached-mac=y -- set Port t0 tag=9 {a}:[b]", "attached-mac": "52:54:00:12:34:56"}}, false},
		{"moved", OVSPort{Bridge: "ovsbr1", Name: "t0", Tag: 7,
			ExternalIDs: map[string]string{"vm-id": "guest two"}}, true},
	}
	for _, s := range steps {
		if err := o.AddPort(s.p, s.move); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if err := o.Applied("t0"); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		got, err := portOf(o, "t0", "vm-id", "attached-mac")
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(&s.p, got); diff != "" {
			t.Errorf("%s: port read back (-want +got):\n%s", s.name, diff)
		}
		if s.p.MTU != 0 {
			// ovs-vsctl returned after ovs-vswitchd applied mtu_request.
			l, err := ns.Handle.LinkByIndex(tap.Attrs().Index)
			if err != nil {
				t.Fatal(err)
			}
			if l.Attrs().MTU != s.p.MTU {
				t.Errorf("%s: kernel MTU of t0 %d, want %d", s.name, l.Attrs().MTU, s.p.MTU)
			}
		}
	}

	err := o.AddPort(OVSPort{Bridge: "ovsbr0", Name: "t0"}, false)
	if err == nil || !strings.Contains(err.Error(), "add t0 to ovsbr0: ") || !strings.Contains(err.Error(), "attached to bridge ovsbr1") {
		t.Errorf("AddPort to another bridge without move: %v, want an error naming both bridges", err)
	}
	for i := range 2 {
		if err := o.DelPort("t0"); err != nil {
			t.Fatalf("DelPort #%d: %v", i+1, err)
		}
		if br, err := o.PortBridge("t0"); err != nil || br != "" {
			t.Fatalf("PortBridge(t0) after DelPort #%d = %q, %v", i+1, br, err)
		}
	}
	if !ns.Exists("t0") {
		t.Errorf("t0 vanished with its port")
	}

	// A port whose device does not exist here is in the database, but
	// ovs-vswitchd could not open it: Applied says so.
	if err := o.AddPort(OVSPort{Bridge: "ovsbr0", Name: "nodev0"}, false); err != nil {
		t.Fatal(err)
	}
	err = o.Applied("nodev0")
	if err == nil || !strings.HasPrefix(err.Error(), "Open vSwitch did not open nodev0") {
		t.Errorf("Applied(nodev0) = %v, want it not opened", err)
	}
}

// TestIntegrationOVSUnavailable checks the one-line errors for a database
// that stopped and one that never ran.
func TestIntegrationOVSUnavailable(t *testing.T) {
	ns := nstest.New(t)
	sw := ns.StartOVS(t)
	sw.AddBridge(t, "ovsbr0")
	sw.StopDB(t)
	for _, o := range []*OVS{{DB: sw.DB}, {DB: unreachableDB(t)}} {
		_, err := o.IsOVSBridge("ovsbr0")
		if !errors.Is(err, ErrOVSUnavailable) {
			t.Errorf("IsOVSBridge with %s: %v, want ErrOVSUnavailable", o.DB, err)
			continue
		}
		msg := err.Error()
		want := "ask Open vSwitch about bridge ovsbr0: Open vSwitch unavailable: " + o.DB + ": database connection failed"
		if !strings.HasPrefix(msg, want) || strings.Contains(msg, "\n") {
			t.Errorf("message %q, want one line starting %q", msg, want)
		}
		if err := o.DelPort("t0"); !errors.Is(err, ErrOVSUnavailable) {
			t.Errorf("DelPort with %s: %v, want ErrOVSUnavailable", o.DB, err)
		}
	}
}

// portOf reads the port called name on whichever bridge has it; nil for
// none.
func portOf(o *OVS, name string, externalIDs ...string) (*OVSPort, error) {
	br, err := o.PortBridge(name)
	if err != nil || br == "" {
		return nil, err
	}
	return o.PortOn(br, name, externalIDs...)
}
