package link_test

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// TestByAddr finds the interface holding an IPv4 and an IPv6 address, and
// none for an address no interface holds.
func TestByAddr(t *testing.T) {
	n := nstest.New(t)
	n.AddBridge(t, "br0", 0)
	n.AddBridge(t, "br1", 0)
	for name, cidr := range map[string]string{"br0": "10.99.0.11/24", "br1": "fd00:99::11/64"} {
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Handle.AddrAdd(n.Link(t, name), a); err != nil {
			t.Fatalf("add %s to %s: %v", cidr, name, err)
		}
	}
	c := open(t, n)
	for _, tc := range []struct{ ip, want string }{
		{"10.99.0.11", "br0"},
		{"fd00:99::11", "br1"},
		{"10.99.0.12", ""},
		{"fd00:99::12", ""},
	} {
		l, err := c.ByAddr(net.ParseIP(tc.ip))
		switch {
		case tc.want == "" && !errors.Is(err, link.ErrNotFound):
			t.Errorf("ByAddr(%s): %v, want ErrNotFound", tc.ip, err)
		case tc.want != "" && err != nil:
			t.Errorf("ByAddr(%s): %v", tc.ip, err)
		case tc.want != "" && l.Name != tc.want:
			t.Errorf("ByAddr(%s) = %s, want %s", tc.ip, l.Name, tc.want)
		}
	}
}
