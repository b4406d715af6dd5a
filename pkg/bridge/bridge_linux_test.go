package bridge

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// TestLinuxBridge looks bridges up, attaches and detaches a port, and
// checks the errors of a bridge that is missing, is not a bridge, or
// changed between the lookup and the attach: the one place their texts are
// asserted.
func TestLinuxBridge(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 1400)
	ns.AddBridge(t, "br1", 0)
	ns.AddTap(t, "tap0")
	if err := ns.Handle.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}); err != nil {
		t.Fatal(err)
	}
	var host Host
	port := func() *link.Link {
		l, err := ns.Conn.ByName("tap0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	for _, tt := range []struct {
		name, want string
		is         error
	}{
		{"nosuch", "bridge nosuch not found", link.ErrNotFound},
		{"veth0", "veth0 is not a bridge (veth)", ErrNotBridge},
		{"tap0", "tap0 is not a bridge (tuntap)", ErrNotBridge},
		{"lo", "lo is not a bridge (device)", ErrNotBridge},
	} {
		_, err := host.Find(ns.Conn, tt.name)
		if err == nil || err.Error() != tt.want || !errors.Is(err, tt.is) {
			t.Errorf("Find(%s) = %v, want %q matching %v", tt.name, err, tt.want, tt.is)
		}
	}

	found, err := host.Find(ns.Conn, "br0")
	if err != nil {
		t.Fatal(err)
	}
	br, ok := found.(*Linux)
	want := &Linux{name: "br0", index: ns.Link(t, "br0").Attrs().Index, mtu: 1400, up: true}
	if !ok || *br != *want {
		t.Errorf("Find(br0) = %+v, want %+v", found, want)
	}
	if b, err := host.PortOf(ns.Conn, port(), Hint{}); b != nil || err != nil {
		t.Errorf("PortOf(tap0) before attach = %+v, %v, want nil, nil", b, err)
	}

	if err := br.Attach(ns.Conn, port()); err != nil {
		t.Fatal(err)
	}
	if err := br.Verify(ns.Conn, port()); err != nil {
		t.Errorf("Verify after attach: %v", err)
	}
	if b, err := host.PortOf(ns.Conn, port(), Hint{}); err != nil || b == nil || !br.Is(b) {
		t.Errorf("PortOf(tap0) after attach = %+v, %v, want %+v", b, err, br)
	}
	if got := ns.Snapshot(t, "tap0").Master; got != "br0" {
		t.Errorf("tap0 master after attach = %q, want br0", got)
	}
	// A port of another bridge moves.
	found, err = host.Find(ns.Conn, "br1")
	if err != nil {
		t.Fatal(err)
	}
	br1 := found.(*Linux)
	if err := br1.Attach(ns.Conn, port()); err != nil {
		t.Fatal(err)
	}
	if got := ns.Snapshot(t, "tap0").Master; got != "br1" {
		t.Errorf("tap0 master after the move = %q, want br1", got)
	}
	for range 2 { // detaching a detached port succeeds
		if err := br1.Detach(ns.Conn, port()); err != nil {
			t.Fatal(err)
		}
	}
	if got := ns.Snapshot(t, "tap0").Master; got != "" {
		t.Errorf("tap0 master after detach = %q, want none", got)
	}

	// The bridge changes after Find.
	if err := br.Attach(ns.Conn, port()); err != nil {
		t.Fatal(err)
	}
	l := ns.Link(t, "br0")
	must(t, ns.Handle.LinkSetDown(l))
	must(t, ns.Handle.LinkSetName(l, "br-new"))
	if err, want := br.Verify(ns.Conn, port()), "attach tap0 to br0: bridge br0 was renamed to br-new"; err == nil || err.Error() != want {
		t.Errorf("Verify after a rename = %v, want %s", err, want)
	}
	must(t, ns.Handle.LinkDel(l))
	if err, want := br.Verify(ns.Conn, port()), "attach tap0 to br0: bridge br0 disappeared"; err == nil || err.Error() != want {
		t.Errorf("Verify after a delete = %v, want %s", err, want)
	}
	if err, want := br.Attach(ns.Conn, port()), "attach tap0 to br0: bridge br0 disappeared"; err == nil || err.Error() != want {
		t.Errorf("Attach to a deleted bridge = %v, want %s", err, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAttachPinsMAC: Attach fixes the MAC of a bridge that would take a
// port's, and leaves alone one whose MAC was set, which keeps its static
// neighbour entries (setting a MAC flushes them).
func TestAttachPinsMAC(t *testing.T) {
	ns := nstest.New(t)
	low := net.HardwareAddr{0, 0, 0, 0, 0, 1}
	attach := func(brName, tap string) {
		t.Helper()
		ns.AddTap(t, tap)
		found, err := (Host{}).Find(ns.Conn, brName)
		if err != nil {
			t.Fatal(err)
		}
		br := found.(*Linux)
		l, err := ns.Conn.ByName(tap)
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Attach(ns.Conn, l); err != nil {
			t.Fatal(err)
		}
	}

	// Kernel-chosen: the bridge keeps its MAC as the port joins and
	// when the port's MAC goes below it.
	ns.AddBridge(t, "br0", 0)
	mac := ns.Snapshot(t, "br0").MAC
	attach("br0", "tap0")
	if err := ns.Handle.LinkSetHardwareAddr(ns.Link(t, "tap0"), low); err != nil {
		t.Fatal(err)
	}
	if got := ns.Snapshot(t, "br0").MAC; got != mac {
		t.Errorf("br0's MAC %s, want %s kept", got, mac)
	}

	// Set by its owner, above its port's: not touched again.
	br1 := ns.AddBridge(t, "br1", 0)
	if err := ns.Handle.LinkSetHardwareAddr(br1, net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}); err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MasterIndex: br1.Index,
		HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}}, PeerName: "eth0p"}
	if err := ns.Handle.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	neigh := &netlink.Neigh{LinkIndex: br1.Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: net.IPv4(192, 0, 2, 5), HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x05}}
	if err := ns.Handle.NeighAdd(neigh); err != nil {
		t.Fatal(err)
	}
	attach("br1", "tap1")
	if got := ns.Snapshot(t, "br1").MAC; got != "02:00:00:00:00:99" {
		t.Errorf("br1's MAC %s, want 02:00:00:00:00:99", got)
	}
	ns1, err := ns.Handle.NeighList(br1.Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns1) != 1 || !ns1[0].IP.Equal(neigh.IP) {
		t.Errorf("br1's neighbours after the attach: %v, want the static entry for %s kept", ns1, neigh.IP)
	}
}
