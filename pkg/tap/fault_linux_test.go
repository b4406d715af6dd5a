package tap

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestUndo makes one step of an ifup fail, by a fault injected just before
// it or by the kernel refusing it, and checks that Apply ends with one line
// naming the step and leaves the tap as it was before the run (or gone, if
// the fault removed it), never half-changed.
func TestUndo(t *testing.T) {
	tests := []struct {
		name   string
		brMTU  int
		before Op // the step the fault lands before
		fault  func(t *testing.T, ns *nstest.NS)
		// want starts the error; for the bridge's own errors (texts
		// checked by package bridge) only the step's prefix.
		want   string
		undone bool // changes were made before the failing step
		gone   bool // the tap itself was removed
	}{
		{
			name: "tap removed before mtu", before: OpMTU, gone: true,
			fault: delLink("tap0"), want: "set mtu of tap0 to 9000: no such device",
		},
		{
			name: "tap removed before attach", before: OpAttach, gone: true,
			fault: delLink("tap0"), want: "attach tap0 to br0: no such device",
		},
		{
			name: "tap removed before promisc", before: OpPromisc, gone: true,
			fault: delLink("tap0"), want: "set promisc of tap0 on: no such device",
		},
		{
			name: "tap removed before up", before: OpUp, gone: true,
			fault: delLink("tap0"), want: "set tap0 up: no such device",
		},
		{
			name: "bridge removed before mac", before: OpMAC, undone: true,
			fault: delLink("br0"), want: "attach tap0 to br0: ",
		},
		{
			name: "bridge removed before attach", before: OpAttach, undone: true,
			fault: delLink("br0"), want: "attach tap0 to br0: ",
		},
		{
			name: "bridge renamed before attach", before: OpAttach, undone: true,
			fault: func(t *testing.T, ns *nstest.NS) {
				br := ns.Link(t, "br0")
				// A link must be down to be renamed.
				must(t, ns.Handle.LinkSetDown(br))
				must(t, ns.Handle.LinkSetName(br, "br1"))
				must(t, ns.Handle.LinkSetUp(br))
			},
			want: "attach tap0 to br0: ",
		},
		{
			name: "port refused: a macvlan already sits on the tap", before: OpAttach, undone: true,
			fault: func(t *testing.T, ns *nstest.NS) {
				must(t, ns.Handle.LinkAdd(&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "mv0",
					ParentIndex: ns.Link(t, "tap0").Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}))
			},
			want: "attach tap0 to br0: device or resource busy",
		},
		{
			// A tap takes an MTU of at most 65521.
			name: "mtu the tap refuses", brMTU: 65535,
			want: "set mtu of tap0 to 65535: invalid argument",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := nstest.New(t)
			if tt.brMTU == 0 {
				tt.brMTU = 9000
			}
			ns.AddBridge(t, "br0", tt.brMTU)
			ns.AddTap(t, "tap0")
			before := ns.Snapshot(t, "tap0")

			pl, err := PlanUp(ns.Conn, "tap0", Port{Bridge: "br0", MAC: MACHigh, Promisc: true})
			if err != nil {
				t.Fatal(err)
			}
			if tt.fault != nil {
				if !hasOp(pl.Changes, tt.before) {
					t.Fatalf("plan %v has no step %v to inject the fault before", pl.Changes, tt.before)
				}
				pl.beforeStep = func(c Change) {
					if c.Op == tt.before {
						tt.fault(t, ns)
					}
				}
			}
			err = pl.Apply(ns.Conn, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Apply = %v, want one line starting %q", err, tt.want)
			}
			if tt.gone {
				if ns.Exists("tap0") {
					t.Error("tap0 still exists")
				}
				return
			}
			if undone := strings.HasSuffix(err.Error(), " (earlier changes undone)"); undone != tt.undone {
				t.Errorf("error %q: says earlier changes were undone: %v, want %v", err, undone, tt.undone)
			}
			if after := ns.Snapshot(t, "tap0"); after != before {
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
