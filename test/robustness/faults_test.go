package robustness

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// Faults present when qemu-ifup starts, or that the kernel raises at one of
// its steps: exit 1, one line, and no interface changed. (Faults that must
// land between two steps are injected in package tap.)
func TestIfupFaults(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, ns *nstest.NS) // makes tap0 and whatever else
		want  string
	}{
		{
			name: "no tap",
			setup: func(t *testing.T, ns *nstest.NS) {
				ns.AddBridge(t, "br0", 0)
			},
			want: "tap0: no such interface",
		},
		{
			name: "no bridge",
			setup: func(t *testing.T, ns *nstest.NS) {
				ns.AddTap(t, "tap0")
			},
			want: "bridge br0 not found",
		},
		{
			name: "bridge is a tap",
			setup: func(t *testing.T, ns *nstest.NS) {
				ns.AddTap(t, "br0")
				ns.AddTap(t, "tap0")
			},
			want: "br0 is not a bridge (tuntap)",
		},
		{
			name: "not a tap",
			setup: func(t *testing.T, ns *nstest.NS) {
				ns.AddBridge(t, "br0", 0)
				must(t, ns.Handle.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tap0"}, PeerName: "peer0"}))
			},
			want: "tap0: not a tap interface (veth)",
		},
		{
			// The tap's largest MTU is 65521; the bridge's can be
			// 65535 while it has no port.
			name: "mtu the tap refuses",
			setup: func(t *testing.T, ns *nstest.NS) {
				ns.AddBridge(t, "br0", 65535)
				ns.AddTap(t, "tap0")
			},
			want: "set mtu of tap0 to 65535: invalid argument",
		},
		{
			// A tap with a macvlan on it has an rx handler already, so
			// the bridge refuses it as a port: the failure comes at the
			// attach, after the MTU and the MAC changed.
			name: "port the bridge refuses",
			setup: func(t *testing.T, ns *nstest.NS) {
				ns.AddBridge(t, "br0", 9000)
				tap := ns.AddTap(t, "tap0")
				mv := &netlink.Macvlan{
					LinkAttrs: netlink.LinkAttrs{Name: "mv0", ParentIndex: tap.Attrs().Index},
					Mode:      netlink.MACVLAN_MODE_BRIDGE,
				}
				must(t, ns.Handle.LinkAdd(mv))
			},
			want: "attach tap0 to br0: device or resource busy (earlier changes undone)",
		},
		{
			name: "already a port of another bridge",
			setup: func(t *testing.T, ns *nstest.NS) {
				ns.AddBridge(t, "br0", 0)
				other := ns.AddBridge(t, "other0", 0)
				tap := ns.AddTap(t, "tap0")
				must(t, ns.Handle.LinkSetMaster(tap, other))
			},
			want: "tap0: already a port of other0, not br0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := nstest.New(t)
			tt.setup(t, ns)
			before := snapAll(t, ns, "tap0", "br0", "mv0", "other0")
			// --quiet: only the error on stderr (without it, the steps
			// made and undone before it are logged first).
			r := run(t, ns, env(t, "QEMU_BRIDGE=br0"), "qemu-ifup", "--quiet", "tap0")
			checkFailure(t, "qemu-ifup", r, tt.want)
			checkUnchanged(t, ns, before)
		})
	}
}

// qemu-ifdown on a tap that is gone or on no bridge has nothing to do; on
// something that is not a tap it refuses.
func TestIfdownFaults(t *testing.T) {
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0", 0)
	must(t, ns.Handle.LinkAdd(&netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "veth0", MasterIndex: br.Index}, PeerName: "peer0"}))
	ns.AddTap(t, "tap0")
	before := snapAll(t, ns, "veth0", "tap0", "br0")
	for _, tc := range []struct {
		name string
		code int
		want string
	}{
		{"gone0", 0, "gone0: already gone, nothing to do"},
		{"tap0", 0, "tap0: on no bridge, nothing to do"},
		{"veth0", 1, "veth0: not a tap interface (veth)"},
	} {
		r := run(t, ns, env(t), "qemu-ifdown", tc.name)
		if r.code != tc.code {
			t.Errorf("qemu-ifdown %s: exit %d, want %d (%q)", tc.name, r.code, tc.code, r.stderr)
		}
		checkOneLine(t, "qemu-ifdown", r.stderr, tc.want)
	}
	checkUnchanged(t, ns, before)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
