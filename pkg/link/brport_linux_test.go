package link_test

import (
	"errors"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// protinfo is what vishvananda/netlink reads of a bridge port's flags
// (an AF_BRIDGE dump, another way than pkg/link's), in pkg/link's terms.
func protinfo(t *testing.T, n *nstest.NS, name string) *link.BridgePort {
	t.Helper()
	pi, err := n.Handle.LinkGetProtinfo(n.Link(t, name))
	if err != nil {
		t.Fatalf("protinfo of %s: %v", name, err)
	}
	return &link.BridgePort{Isolated: pi.Isolated, Learning: pi.Learning, UnicastFlood: pi.Flood}
}

// TestBridgePortFlags sets each flag pkg/link sets on a bridge port, off and
// on again, and reads it back both through pkg/link and through netlink.
func TestBridgePortFlags(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)
	br := n.AddBridge(t, "br0", 0)
	n.AddTap(t, "tap0")
	n.AddTap(t, "tap1")
	tap, err := c.ByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	if tap.BridgePort != nil {
		t.Errorf("tap0 on no bridge: BridgePort = %+v, want nil", tap.BridgePort)
	}
	if err := c.SetMaster(tap, br.Index); err != nil {
		t.Fatal(err)
	}
	read := func() *link.BridgePort {
		t.Helper()
		l, err := c.ByIndex(tap.Index)
		if err != nil {
			t.Fatal(err)
		}
		if l.BridgePort == nil {
			t.Fatalf("tap0 on br0: BridgePort nil")
		}
		if diff := cmp.Diff(protinfo(t, n, "tap0"), l.BridgePort); diff != "" {
			t.Errorf("pkg/link against netlink (-want +got):\n%s", diff)
		}
		return l.BridgePort
	}
	// A new port learns and floods, and is not isolated.
	want := link.BridgePort{Learning: true, UnicastFlood: true}
	if diff := cmp.Diff(&want, read()); diff != "" {
		t.Errorf("new port (-want +got):\n%s", diff)
	}
	steps := []struct {
		name string
		set  func(*link.Link, bool) error
		flag *bool
	}{
		{"isolated", c.SetIsolated, &want.Isolated},
		{"learning", c.SetLearning, &want.Learning},
		{"flood", c.SetUnicastFlood, &want.UnicastFlood},
	}
	for _, s := range steps {
		for _, on := range []bool{!*s.flag, *s.flag} {
			if err := s.set(tap, on); err != nil {
				t.Fatalf("set %s %v: %v", s.name, on, err)
			}
			*s.flag = on
			if diff := cmp.Diff(&want, read()); diff != "" {
				t.Errorf("after %s %v (-want +got):\n%s", s.name, on, diff)
			}
		}
	}
	// tap1 is on no bridge: the kernel refuses, and says so.
	other, err := c.ByName("tap1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetIsolated(other, true); err == nil {
		t.Errorf("SetIsolated on a tap on no bridge succeeded")
	}
}

// TestStaticFDB adds, reads and removes a static forwarding entry on a
// bridge port, twice, and compares with what netlink lists.
func TestStaticFDB(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)
	br := n.AddBridge(t, "br0", 0)
	n.AddTap(t, "tap0")
	tap, err := c.ByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetMaster(tap, br.Index); err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	listed := func() bool {
		t.Helper()
		ns, err := n.Handle.NeighList(tap.Index, unix.AF_BRIDGE)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ns {
			if e.HardwareAddr.String() == mac.String() && e.State&netlink.NUD_NOARP != 0 && e.MasterIndex == br.Index {
				return true
			}
		}
		return false
	}
	for i := range 2 {
		if err := c.AddStaticFDB(tap, mac); err != nil {
			t.Fatalf("AddStaticFDB #%d: %v", i+1, err)
		}
		if ok, err := c.StaticFDB(tap, mac); err != nil || !ok {
			t.Errorf("StaticFDB after add #%d = %v, %v, want true", i+1, ok, err)
		}
		if !listed() {
			t.Errorf("netlink lists no static entry for %s on tap0 after add #%d", mac, i+1)
		}
	}
	for i := range 2 {
		if err := c.DelFDB(tap, mac); err != nil {
			t.Fatalf("DelFDB #%d: %v", i+1, err)
		}
		if ok, err := c.StaticFDB(tap, mac); err != nil || ok {
			t.Errorf("StaticFDB after delete #%d = %v, %v, want false", i+1, ok, err)
		}
		if listed() {
			t.Errorf("netlink still lists %s on tap0 after delete #%d", mac, i+1)
		}
	}
	if err := c.AddStaticFDB(&link.Link{Index: 1 << 30}, mac); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("AddStaticFDB on a missing interface: %v, want ErrNotFound", err)
	}
}
