package tap

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
)

type portFlags struct{ Isolated, Learning, Flood bool }

func readFlags(t *testing.T, ns *nstest.NS, name string) portFlags {
	t.Helper()
	pi, err := ns.Handle.LinkGetProtinfo(ns.Link(t, name))
	if err != nil {
		t.Fatalf("protinfo of %s: %v", name, err)
	}
	return portFlags{pi.Isolated, pi.Learning, pi.Flood}
}

func withFlags(p Port, kv ...any) Port {
	for i := 0; i < len(kv); i += 2 {
		p.Flags.Set(kv[i].(bridge.Flag), kv[i+1].(bool))
	}
	return p
}

// TestPortFlagsPlanAndApply sets the three flags on a new port, with the
// static entry for the guest MAC, then finds nothing to do, then only the
// flag someone changed behind its back.
func TestPortFlagsPlanAndApply(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "virbr0", 0)
	ns.AddTap(t, "tap0")
	p := withFlags(seedPort, bridge.FlagIsolated, true, bridge.FlagLearning, false, bridge.FlagUnicastFlood, false)
	p.GuestMAC = "52:54:00:12:34:56"

	pl, err := PlanUp(ns.Conn, "tap0", p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{OpMAC, OpAttach, OpFlag, OpFlag, OpFlag, OpFDB, OpPromisc, OpUp}
	if !sameOps(ops(pl.Changes), want) {
		t.Fatalf("plan = %v, want %s", pl.Changes, fmtOps(want))
	}
	if err := pl.Apply(ns.Conn, nil); err != nil {
		t.Fatal(err)
	}
	if got := readFlags(t, ns, "tap0"); got != (portFlags{Isolated: true}) {
		t.Errorf("flags after ifup = %+v, want isolated only", got)
	}
	if pl, err := PlanUp(ns.Conn, "tap0", p); err != nil || len(pl.Changes) != 0 {
		t.Errorf("second plan = %v, %v; want nothing to do", pl, err)
	}
	if err := ns.Handle.LinkSetFlood(ns.Link(t, "tap0"), true); err != nil {
		t.Fatal(err)
	}
	pl, err = PlanUp(ns.Conn, "tap0", p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"flood off"}, changeStrings(pl.Changes)); diff != "" {
		t.Errorf("plan after flood was turned on (-want +got):\n%s", diff)
	}
}

// TestPortFlagsUndone makes the step after the flags fail (the kernel
// refuses a static entry for the all-zero MAC, which the config parser would
// have refused) on a tap that is already a port, and checks that the flags
// are back as they were.
func TestPortFlagsUndone(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "virbr0", 0)
	ns.AddTap(t, "tap0")
	pl, err := PlanUp(ns.Conn, "tap0", seedPort)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Apply(ns.Conn, nil); err != nil {
		t.Fatal(err)
	}
	before, beforeFlags := ns.Snapshot(t, "tap0"), readFlags(t, ns, "tap0")

	p := withFlags(seedPort, bridge.FlagIsolated, true, bridge.FlagLearning, false, bridge.FlagUnicastFlood, false)
	p.GuestMAC = "00:00:00:00:00:00"
	pl, err = PlanUp(ns.Conn, "tap0", p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{OpFlag, OpFlag, OpFlag, OpFDB}
	if !sameOps(ops(pl.Changes), want) {
		t.Fatalf("plan = %v, want %s", pl.Changes, fmtOps(want))
	}
	err = pl.Apply(ns.Conn, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "add static fdb entry 00:00:00:00:00:00 on tap0: ") ||
		!strings.HasSuffix(err.Error(), "(earlier changes undone)") {
		t.Fatalf("Apply = %v, want the fdb entry refused and the flags undone", err)
	}
	if got := readFlags(t, ns, "tap0"); got != beforeFlags {
		t.Errorf("flags after the failure = %+v, want %+v as before", got, beforeFlags)
	}
	if after := ns.Snapshot(t, "tap0"); after != before {
		t.Errorf("tap0 changed: %+v -> %+v", before, after)
	}
}

// TestRefusedSetting: a setting the bridge's kind refuses (here a VLAN,
// on a kernel bridge) stops the plan before anything changes.
func TestRefusedSetting(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "virbr0", 0)
	ns.AddTap(t, "tap0")
	before := ns.Snapshot(t, "tap0")
	p := seedPort
	p.VLAN = 10
	_, err := PlanUp(ns.Conn, "tap0", p)
	var se *bridge.SettingError
	if !errors.As(err, &se) || se.Setting != bridge.SettingVLAN || !strings.HasPrefix(err.Error(), "tap0: access VLAN 10 needs ") {
		t.Errorf("PlanUp with VLAN 10 = %v, want the bridge's refusal", err)
	}
	if after := ns.Snapshot(t, "tap0"); after != before {
		t.Errorf("tap0 changed: %+v -> %+v", before, after)
	}
}

func changeStrings(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}
