package tap

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// The integration tests below run against the kernel, each in a throwaway
// network namespace.

var seedPort = Port{Bridge: "virbr0", MAC: MACHigh, Promisc: true}

func ops(cs []Change) []Op {
	out := make([]Op, len(cs))
	for i, c := range cs {
		out[i] = c.Op
	}
	return out
}

func sameOps(a, b []Op) bool { return slices.Equal(a, b) }

func fmtOps(o []Op) string {
	s := make([]string, len(o))
	for i, op := range o {
		s[i] = op.String()
	}
	return strings.Join(s, ", ")
}

func TestUpOnMTU1400Bridge(t *testing.T) {
	ns := nstest.New(t)
	br := ns.AddBridge(t, "virbr0", 1400)
	// A port with a low MAC, as the host's uplink would be: the bridge's
	// address must stay this one after the tap joins.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0", MTU: 1400,
		HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 1}}, PeerName: "uplink1"}
	if err := ns.Handle.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.LinkSetMasterByIndex(ns.Link(t, "uplink0"), br.Index); err != nil {
		t.Fatal(err)
	}
	brMAC := ns.Link(t, "virbr0").Attrs().HardwareAddr.String()
	ns.AddTap(t, "tap0")
	before := ns.Snapshot(t, "tap0")

	pl, err := PlanUp(ns.Conn, "tap0", seedPort)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Op{OpMTU, OpMAC, OpAttach, OpPromisc, OpUp}; !sameOps(ops(pl.Changes), want) {
		t.Fatalf("plan = %v, want %s", pl.Changes, fmtOps(want))
	}
	var done []Change
	if err := pl.Apply(ns.Conn, func(c Change) { done = append(done, c) }); err != nil {
		t.Fatal(err)
	}
	if len(done) != len(pl.Changes) {
		t.Errorf("done called for %v, want every change", done)
	}
	got := ns.Snapshot(t, "tap0")
	want := before
	want.MTU, want.MAC, want.Master, want.Promisc, want.Up = 1400, "fe"+before.MAC[2:], "virbr0", true, true
	if got != want {
		t.Errorf("tap0 after ifup (-want +got):\n%s", cmp.Diff(want, got))
	}
	b := ns.Link(t, "virbr0").Attrs()
	if b.MTU != 1400 || b.HardwareAddr.String() != brMAC {
		t.Errorf("virbr0 after ifup: mtu %d mac %s, want 1400 %s", b.MTU, b.HardwareAddr, brMAC)
	}

	// Idempotent: a second run plans nothing.
	again, err := PlanUp(ns.Conn, "tap0", seedPort)
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("second PlanUp = %v, %v; want no changes", again.Changes, err)
	}

	down, err := PlanDown(ns.Conn, "tap0", Port{Promisc: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Op{OpPromiscOff, OpDetach}; !sameOps(ops(down.Changes), want) || down.Bridge != "virbr0" {
		t.Fatalf("down plan = %v on %q", down.Changes, down.Bridge)
	}
	if err := down.Apply(ns.Conn, nil); err != nil {
		t.Fatal(err)
	}
	got = ns.Snapshot(t, "tap0")
	if got.Master != "" || got.Promisc || !got.Up {
		t.Errorf("tap0 after ifdown = %+v, want no master, no promisc, still up", got)
	}
	if again, err := PlanDown(ns.Conn, "tap0", Port{Promisc: true}); err != nil || len(again.Changes) != 0 || again.Gone {
		t.Errorf("second PlanDown = %+v, %v; want nothing to do", again, err)
	}
	if err := ns.Handle.LinkDel(ns.Link(t, "tap0")); err != nil {
		t.Fatal(err)
	}
	if gone, err := PlanDown(ns.Conn, "tap0", Port{Promisc: true}); err != nil || !gone.Gone {
		t.Errorf("PlanDown of a deleted tap = %+v, %v; want Gone", gone, err)
	}
}

func TestPlanUpErrors(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	ns.AddBridge(t, "br1", 0)
	if err := ns.Handle.LinkSetDown(ns.Link(t, "br1")); err != nil {
		t.Fatal(err)
	}
	ns.AddTap(t, "tap0")
	ns.AddTap(t, "tap1")
	if err := ns.Handle.LinkSetMaster(ns.Link(t, "tap1"), ns.Link(t, "br0")); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}); err != nil {
		t.Fatal(err)
	}
	err := ns.Do(func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		return h.LinkAdd(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "tun0"}, Mode: netlink.TUNTAP_MODE_TUN})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The bridge's own errors, whose texts package bridge's tests check,
	// come prefixed with the tap.
	tests := []struct {
		tap  string
		port Port
		want string
		is   error
	}{
		{"tap9", Port{Bridge: "br0"}, "tap9: no such interface", link.ErrNotFound},
		{"tap0", Port{Bridge: "virbr0"}, "tap0: ", link.ErrNotFound},
		{"tap0", Port{Bridge: "veth0"}, "tap0: ", bridge.ErrNotBridge},
		{"veth0", Port{Bridge: "br0"}, "veth0: not a tap interface (veth)", ErrNotTap},
		{"br0", Port{Bridge: "br0"}, "br0: not a tap interface (bridge)", ErrNotTap},
		{"tun0", Port{Bridge: "br0"}, "tun0: not a tap interface (a tun device, which carries no Ethernet frames)", ErrNotTap},
	}
	for _, tt := range tests {
		_, err := PlanUp(ns.Conn, tt.tap, tt.port)
		exact := !strings.HasSuffix(tt.want, ": ")
		if err == nil || !errors.Is(err, tt.is) || !strings.HasPrefix(err.Error(), tt.want) || exact && err.Error() != tt.want {
			t.Errorf("PlanUp(%s, %s) = %v, want %q matching %v", tt.tap, tt.port.Bridge, err, tt.want, tt.is)
		}
	}
	// A bridge that is down takes the tap anyway; the plan says so.
	if pl, err := PlanUp(ns.Conn, "tap0", Port{Bridge: "br1"}); err != nil || !pl.BridgeDown {
		t.Errorf("PlanUp on a down bridge = %+v, %v, want a plan with BridgeDown", pl, err)
	}
	if err := ns.Handle.LinkSetUp(ns.Link(t, "br1")); err != nil {
		t.Fatal(err)
	}
	if pl, err := PlanUp(ns.Conn, "tap0", Port{Bridge: "br1"}); err != nil || pl.BridgeDown {
		t.Errorf("PlanUp on an up bridge = %+v, %v, want a plan without BridgeDown", pl, err)
	}
	_, err = PlanUp(ns.Conn, "tap1", Port{Bridge: "br1"})
	var other *OtherBridgeError
	if want := "tap1: already a port of br0, not br1"; err == nil || err.Error() != want || !errors.As(err, &other) {
		t.Errorf("PlanUp of a port of another bridge = %v, want %s", err, want)
	}
	pl, err := PlanUp(ns.Conn, "tap1", Port{Bridge: "br1", AllowMove: true, MAC: MACKeep})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Apply(ns.Conn, nil); err != nil {
		t.Fatal(err)
	}
	if m := ns.MasterName(t, ns.Link(t, "tap1")); m != "br1" {
		t.Errorf("tap1 master after move = %q, want br1", m)
	}
}
