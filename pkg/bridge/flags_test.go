package bridge

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

func flags(kv ...any) PortFlags {
	var p PortFlags
	for i := 0; i < len(kv); i += 2 {
		p.Set(kv[i].(Flag), kv[i+1].(bool))
	}
	return p
}

func TestPortFlagsChanges(t *testing.T) {
	fresh := &link.BridgePort{Learning: true, UnicastFlood: true}
	tests := []struct {
		name string
		want PortFlags
		have *link.BridgePort
		out  []FlagChange
	}{
		{"nothing given", PortFlags{}, fresh, nil},
		{"isolated on a fresh port", flags(FlagIsolated, true), fresh, []FlagChange{{FlagIsolated, true}}},
		{"learning and flood off, in order", flags(FlagUnicastFlood, false, FlagLearning, false), fresh,
			[]FlagChange{{FlagLearning, false}, {FlagUnicastFlood, false}}},
		{"already as wanted", flags(FlagIsolated, true, FlagLearning, false),
			&link.BridgePort{Isolated: true, UnicastFlood: true}, nil},
		{"explicitly on again", flags(FlagIsolated, false, FlagLearning, true), &link.BridgePort{Isolated: true},
			[]FlagChange{{FlagIsolated, false}, {FlagLearning, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.out, tt.want.Changes(tt.have)); diff != "" {
				t.Errorf("Changes (-want +got):\n%s", diff)
			}
		})
	}
	if got := (FlagChange{FlagUnicastFlood, false}).String(); got != "flood off" {
		t.Errorf("String() = %q", got)
	}
}

// TestSetFlagReadsBack sets every flag both ways on a real port and checks
// what the kernel then reports; a tap on no bridge is an error naming it.
func TestSetFlagReadsBack(t *testing.T) {
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0", 0)
	ns.AddTap(t, "tap0")
	ns.AddTap(t, "tap1")
	var c *link.Conn
	if err := ns.Do(func() (err error) { c, err = link.Open(); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tap, err := c.ByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetMaster(tap, br.Index); err != nil {
		t.Fatal(err)
	}
	for f := range numFlags {
		for _, on := range []bool{true, false, true} {
			if err := setFlag(c, tap, FlagChange{f, on}); err != nil {
				t.Fatalf("SetFlag(%v %v): %v", f, on, err)
			}
			pi, err := ns.Handle.LinkGetProtinfo(ns.Link(t, "tap0"))
			if err != nil {
				t.Fatal(err)
			}
			got := map[Flag]bool{FlagIsolated: pi.Isolated, FlagLearning: pi.Learning, FlagUnicastFlood: pi.Flood}[f]
			if got != on {
				t.Errorf("after SetFlag(%v %v) the kernel reports %v", f, on, got)
			}
		}
	}
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	for range 2 {
		if err := addStaticFDB(c, tap, mac); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := delFDB(c, tap, mac); err != nil {
			t.Fatal(err)
		}
	}
	other, err := c.ByName("tap1")
	if err != nil {
		t.Fatal(err)
	}
	err = setFlag(c, other, FlagChange{FlagIsolated, true})
	if err == nil || !strings.HasPrefix(err.Error(), "set isolated on of tap1: ") {
		t.Errorf("SetFlag on a tap on no bridge: %v, want an error naming it", err)
	}
}
