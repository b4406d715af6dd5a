package tap

import (
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// Faults that land between two steps of one ifup: each must end with a
// one-line error and the tap as it was before (or gone, if it was removed),
// never half-changed.
func TestApplyFaultBetweenSteps(t *testing.T) {
	tests := []struct {
		name   string
		before Op // the step the fault lands before
		fault  func(t *testing.T, ns *nstest.NS)
		want   string // in the error
		gone   bool   // the tap itself was removed
	}{
		{
			name: "tap removed before mtu", before: OpMTU, gone: true,
			fault: delLink("tap0"), want: "set mtu of tap0 to 9000",
		},
		{
			name: "tap removed before attach", before: OpAttach, gone: true,
			fault: delLink("tap0"), want: "attach tap0 to br0",
		},
		{
			name: "tap removed before up", before: OpUp, gone: true,
			fault: delLink("tap0"), want: "set tap0 up",
		},
		{
			name: "bridge removed before attach", before: OpAttach,
			fault: delLink("br0"), want: "attach tap0 to br0: bridge br0 disappeared",
		},
		{
			name: "bridge renamed before attach", before: OpAttach,
			fault: func(t *testing.T, ns *nstest.NS) {
				br := ns.Link(t, "br0")
				// A link must be down to be renamed.
				must(t, ns.Handle.LinkSetDown(br))
				must(t, ns.Handle.LinkSetName(br, "br1"))
				must(t, ns.Handle.LinkSetUp(br))
			},
			want: "bridge br0 was renamed to br1",
		},
		{
			name: "bridge removed before mac", before: OpMAC,
			fault: delLink("br0"), want: "attach tap0 to br0: bridge br0 disappeared",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := nstest.New(t)
			ns.AddBridge(t, "br0", 9000)
			ns.AddTap(t, "tap0")
			before := snap(t, ns, "tap0")

			pl, err := PlanUp(ns.Conn, "tap0", Port{Bridge: "br0", MAC: MACHigh, Promisc: true})
			if err != nil {
				t.Fatal(err)
			}
			if !hasOp(pl.Changes, tt.before) {
				t.Fatalf("plan %v has no step %v to inject the fault before", pl.Changes, tt.before)
			}
			pl.beforeStep = func(c Change) {
				if c.Op == tt.before {
					tt.fault(t, ns)
				}
			}
			err = pl.Apply(ns.Conn, nil)
			if err == nil {
				t.Fatal("Apply succeeded despite the fault")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, tt.want)
			}
			if tt.gone {
				if ns.Exists("tap0") {
					t.Error("tap0 still exists")
				}
				return
			}
			after := snap(t, ns, "tap0")
			if after != before {
				t.Errorf("tap0 half-changed: before %+v, after %+v", before, after)
			}
		})
	}
}

func delLink(name string) func(*testing.T, *nstest.NS) {
	return func(t *testing.T, ns *nstest.NS) {
		must(t, ns.Handle.LinkDel(ns.Link(t, name)))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func hasOp(cs []Change, op Op) bool {
	for _, c := range cs {
		if c.Op == op {
			return true
		}
	}
	return false
}
