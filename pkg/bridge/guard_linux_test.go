package bridge

import (
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// nsGuards lists, through nftables in ns, the chains of the guard table
// and the number of rules in each.
func nsGuards(t *testing.T, ns *nstest.NS) map[string]int {
	t.Helper()
	out := map[string]int{}
	for name, rules := range nstest.NftChains(t, ns, GuardTable) {
		out[name] = len(rules)
	}
	return out
}

// rootQdisc is the kind of the root qdisc of the interface called name,
// as netlink lists it, with its rate for a tbf.
func rootQdisc(t *testing.T, ns *nstest.NS, name string) (string, uint64) {
	t.Helper()
	qs, err := ns.Handle.QdiscList(ns.Link(t, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			if tbf, ok := q.(*netlink.Tbf); ok {
				return "tbf", tbf.Rate
			}
			return q.Type(), 0
		}
	}
	return "", 0
}

// redirects lists the interfaces the ingress filters of the interface
// called name redirect to.
func redirects(t *testing.T, ns *nstest.NS, name string) []int {
	t.Helper()
	fs, err := ns.Handle.FilterList(ns.Link(t, name), netlink.MakeHandle(0xffff, 0))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range fs {
		if u, ok := f.(*netlink.U32); ok {
			for _, a := range u.Actions {
				if m, ok := a.(*netlink.MirredAction); ok {
					out = append(out, m.Ifindex)
				}
			}
		}
	}
	return out
}

func applyAll(t *testing.T, c *link.Conn, port *link.Link, steps []Step) {
	t.Helper()
	for _, st := range steps {
		if err := st.Apply(c, port); err != nil {
			t.Fatalf("%s: %v", st.Desc, err)
		}
	}
}

// TestGuardAndShape gives a port its rules and its limit, finds nothing
// to do the second time, removes a vanished port's rules, undoes a
// change, and leaves nothing behind when the port leaves.
func TestGuardAndShape(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	ns.AddTap(t, "tap0")
	ns.AddTap(t, "tap1")
	found, err := Host{}.Find(ns.Conn, "br0")
	if err != nil {
		t.Fatal(err)
	}
	br := found.(*Linux)
	port := func(name string) *link.Link {
		l, err := ns.Conn.ByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	addrs, err := ParseAddrs("192.168.122.10 fd00::10")
	if err != nil {
		t.Fatal(err)
	}
	s := PortSettings{GuestMAC: "52:54:00:12:34:56", DenySpoofing: true, Addrs: addrs,
		Inbound: Limit{Rate: 1_000_000}, Outbound: Limit{Rate: 2_000_000, Burst: 64 << 10}}
	if err := br.Check(s); err != nil {
		t.Fatal(err)
	}

	steps, err := br.Join(ns.Conn, port("tap0"), nil, 0, s)
	if err != nil {
		t.Fatal(err)
	}
	var acts []Action
	for _, st := range steps {
		acts = append(acts, st.Action)
	}
	if want := []Action{ActGuard, ActShape, ActShape, ActAttach}; !slices.Equal(acts, want) {
		t.Fatalf("Join steps = %v, want %v", acts, want)
	}
	applyAll(t, ns.Conn, port("tap0"), steps)
	got := nsGuards(t, ns)
	if got[guardBase] != 1 || got[GuardChain("tap0")] < 10 {
		t.Errorf("chains after ifup = %v, want one jump and the port's rules", got)
	}
	if kind, rate := rootQdisc(t, ns, "tap0"); kind != "tbf" || rate != 1_000_000/8 {
		t.Errorf("root qdisc of tap0 = %s at %d B/s, want tbf at 125000", kind, rate)
	}
	if q := port("tap0").Qdisc; q != "tbf" {
		t.Errorf("tap0's root qdisc as pkg/link reads it = %q, want tbf", q)
	}
	ifb := ifbName(ns.Link(t, "tap0").Attrs().Index)
	if kind, rate := rootQdisc(t, ns, ifb); kind != "tbf" || rate != 2_000_000/8 {
		t.Errorf("root qdisc of %s = %s at %d B/s, want tbf at 250000", ifb, kind, rate)
	}
	if got := redirects(t, ns, "tap0"); len(got) != 1 || got[0] != ns.Link(t, ifb).Attrs().Index {
		t.Errorf("tap0 redirects what it receives to %v, want to %s alone", got, ifb)
	}
	if steps, err := br.Join(ns.Conn, port("tap0"), br, 0, s); err != nil || len(steps) != 0 {
		t.Errorf("second Join = %v, %v; want nothing to do", steps, err)
	}

	// tap1's rules outlive tap1; the next port's ifup removes them.
	s1 := PortSettings{GuestMAC: "52:54:00:12:34:57", DenySpoofing: true, Outbound: Limit{Rate: 1_000_000}}
	ifb1 := ifbName(ns.Link(t, "tap1").Attrs().Index)
	steps, err = br.Join(ns.Conn, port("tap1"), nil, 0, s1)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, ns.Conn, port("tap1"), steps)
	if got := nsGuards(t, ns); got[GuardChain("tap1")] != 4 || got[guardBase] != 2 {
		t.Errorf("chains with tap1 = %v, want tap1's 4 rules and two jumps", got)
	}
	if !ns.Exists(ifb1) {
		t.Errorf("no %s for tap1's outbound limit", ifb1)
	}
	if err := ns.Handle.LinkDel(ns.Link(t, "tap1")); err != nil {
		t.Fatal(err)
	}
	// A change of tap0's outbound rate, undone.
	s2 := s
	s2.Outbound = Limit{}
	steps, err = br.Join(ns.Conn, port("tap0"), br, 0, s2)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 {
		t.Fatalf("Join after tap1 vanished = %v, want its removal, tap0's new mark and the outbound limit's removal", steps)
	}
	applyAll(t, ns.Conn, port("tap0"), steps)
	after := nsGuards(t, ns)
	if _, ok := after[GuardChain("tap1")]; ok || after[GuardChain("tap0")] != got[GuardChain("tap0")] {
		t.Errorf("chains after the change = %v, want no tap1 and tap0's rules", after)
	}
	if ns.Exists(ifb) || len(redirects(t, ns, "tap0")) != 0 {
		t.Errorf("%s or tap0's redirect left after the outbound limit went", ifb)
	}
	if ns.Exists(ifb1) {
		t.Errorf("%s of the vanished tap1 left", ifb1)
	}
	for _, st := range []Step{steps[2], steps[1]} {
		if err := st.Undo(ns.Conn, port("tap0")); err != nil {
			t.Fatal(err)
		}
	}
	if !ns.Exists(ifb) || len(redirects(t, ns, "tap0")) != 1 {
		t.Errorf("the undo did not give tap0 back its outbound limit")
	}
	if undone := nsGuards(t, ns); undone[GuardChain("tap0")] != got[GuardChain("tap0")] || undone[guardBase] != 1 {
		t.Errorf("chains after the undo = %v, want tap0's rules as before: %v", undone, got)
	}

	leave, err := br.Leave(ns.Conn, port("tap0"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := leave.Apply(ns.Conn, port("tap0")); err != nil {
		t.Fatal(err)
	}
	if got := nsGuards(t, ns); len(got) != 1 || got[guardBase] != 0 {
		t.Errorf("chains after ifdown = %v, want the base chain alone, empty", got)
	}
	if kind, _ := rootQdisc(t, ns, "tap0"); kind == "tbf" {
		t.Errorf("root qdisc of tap0 after ifdown is still tbf")
	}
	if ns.Snapshot(t, "tap0").Master != "" {
		t.Errorf("tap0 still on a bridge after ifdown")
	}
	if ns.Exists(ifb) || len(redirects(t, ns, "tap0")) != 0 {
		t.Errorf("%s or tap0's redirect left after ifdown", ifb)
	}
}
