package link_test

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

func TestDefaultRouteLinks(t *testing.T) {
	ns := nstest.New(t)
	c := open(t, ns)
	if got, err := c.DefaultRouteLinks(); err != nil || len(got) != 0 {
		t.Fatalf("DefaultRouteLinks without routes = %v, %v, want none", got, err)
	}
	addr := func(l netlink.Link, cidr string) {
		t.Helper()
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.Handle.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
	}
	br0 := ns.AddBridge(t, "br0", 0)
	br1 := ns.AddBridge(t, "br1", 0)
	br2 := ns.AddBridge(t, "br2", 0)
	addr(br0, "192.0.2.1/24")
	addr(br1, "198.51.100.1/24")
	addr(br2, "203.0.113.1/24")
	route := func(r *netlink.Route) {
		t.Helper()
		if err := ns.Handle.RouteAdd(r); err != nil {
			t.Fatal(err)
		}
	}
	// A default route of another table and a non-default route do not count.
	route(&netlink.Route{Dst: &net.IPNet{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(8, 32)}, Gw: net.IPv4(203, 0, 113, 2), LinkIndex: br2.Index})
	route(&netlink.Route{Gw: net.IPv4(203, 0, 113, 2), LinkIndex: br2.Index, Table: 100})
	route(&netlink.Route{Gw: net.IPv4(198, 51, 100, 2), LinkIndex: br1.Index, Priority: 200})
	route(&netlink.Route{Gw: net.IPv4(192, 0, 2, 2), LinkIndex: br0.Index, Priority: 100})
	got, err := c.DefaultRouteLinks()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{br0.Index, br1.Index}, got); diff != "" {
		t.Errorf("DefaultRouteLinks (-want +got):\n%s", diff)
	}
}
