package link_test

import (
	"errors"
	"net"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// The integration tests below run against the kernel, each in a throwaway
// network namespace, and compare what pkg/link reads with what
// vishvananda/netlink reads of the same interface.

// open opens a Conn inside the namespace; the tests then use it from their
// own goroutine, on any thread, as the helpers do.
func open(t *testing.T, n *nstest.NS) *link.Conn {
	t.Helper()
	var c *link.Conn
	err := n.Do(func() (err error) {
		c, err = link.Open()
		return err
	})
	if err != nil {
		t.Fatalf("open in %s: %v", n.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tunSpec is a tun device made with the tun driver's ioctls, as QEMU and
// libvirt make them (vishvananda/netlink always sets an owner and a group).
type tunSpec struct {
	name         string
	flags        uint16 // IFF_TAP or IFF_TUN, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE
	owner, group int    // -1: not set
	persist      bool
}

// addTun creates the device inside the namespace. A device that does not
// persist lives while its file is open: until the test ends.
func addTun(t *testing.T, n *nstest.NS, s tunSpec) {
	t.Helper()
	var f *os.File
	err := n.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun")
		ifr, err := unix.NewIfreq(s.name)
		if err != nil {
			return err
		}
		ifr.SetUint16(s.flags)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			return err
		}
		if s.owner >= 0 {
			if err := unix.IoctlSetInt(fd, unix.TUNSETOWNER, s.owner); err != nil {
				return err
			}
		}
		if s.group >= 0 {
			if err := unix.IoctlSetInt(fd, unix.TUNSETGROUP, s.group); err != nil {
				return err
			}
		}
		if s.persist {
			return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1)
		}
		return nil
	})
	if f != nil {
		t.Cleanup(func() { f.Close() })
	}
	if err != nil {
		t.Fatalf("add tun %s: %v", s.name, err)
	}
}

// fromNetlink is what vishvananda/netlink read of l, in pkg/link's terms.
// netlink cannot tell an unset tun owner from root: owner and group are
// taken from want's where netlink reads 0.
func fromNetlink(l netlink.Link, want *link.Link) *link.Link {
	a := l.Attrs()
	got := &link.Link{
		Index:       a.Index,
		Name:        a.Name,
		Kind:        l.Type(),
		MTU:         a.MTU,
		MAC:         a.HardwareAddr,
		Flags:       a.RawFlags,
		MasterIndex: a.MasterIndex,
		Alias:       a.Alias,
	}
	if len(got.MAC) == 0 {
		got.MAC = nil
	}
	if got.Kind == "device" { // netlink's Type() without IFLA_INFO_KIND
		got.Kind = ""
	}
	if t, ok := l.(*netlink.Tuntap); ok {
		got.Kind = "tun" // netlink's Type() says "tuntap"
		got.Tun = &link.Tun{
			Tap:            t.Mode == netlink.TUNTAP_MODE_TAP,
			Owner:          int64(t.Owner),
			Group:          int64(t.Group),
			MultiQueue:     t.Flags&netlink.TUNTAP_MULTI_QUEUE != 0,
			Persist:        !t.NonPersist,
			VnetHdr:        t.Flags&netlink.TUNTAP_VNET_HDR != 0,
			Queues:         t.Queues,
			DisabledQueues: t.DisabledQueues,
		}
		if want != nil && want.Tun != nil {
			if t.Owner == 0 && want.Tun.Owner == -1 {
				got.Tun.Owner = -1
			}
			if t.Group == 0 && want.Tun.Group == -1 {
				got.Tun.Group = -1
			}
			// netlink does not read IFLA_CARRIER.
			got.Tun.Carrier = want.Tun.Carrier
		}
	}
	return got
}

// fromNetlinkPort is fromNetlink of the interface called name, with the
// port flags netlink reads when the interface is a port of a bridge.
func fromNetlinkPort(t *testing.T, n *nstest.NS, name string, want *link.Link) *link.Link {
	t.Helper()
	l := n.Link(t, name)
	got := fromNetlink(l, want)
	if l.Attrs().MasterIndex == 0 {
		return got
	}
	if m, err := n.Handle.LinkByIndex(l.Attrs().MasterIndex); err == nil && m.Type() == "bridge" {
		got.BridgePort = protinfo(t, n, name)
	}
	return got
}

func TestByNameMatchesNetlink(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)

	br := n.AddBridge(t, "br0", 1400)
	addTun(t, n, tunSpec{name: "tap0", flags: unix.IFF_TAP | unix.IFF_NO_PI, owner: -1, group: -1, persist: true})
	addTun(t, n, tunSpec{name: "tap1", flags: unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR | unix.IFF_MULTI_QUEUE, owner: 1000, group: 1001})
	addTun(t, n, tunSpec{name: "tun0", flags: unix.IFF_TUN | unix.IFF_NO_PI, owner: 0, group: -1, persist: true})
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0", MTU: 1400}, PeerName: "veth1"}
	if err := n.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	v0 := n.Link(t, "veth0")
	if err := n.Handle.LinkSetMasterByIndex(v0, br.Index); err != nil {
		t.Fatalf("veth0 master br0: %v", err)
	}
	if err := n.Handle.SetPromiscOn(v0); err != nil {
		t.Fatalf("veth0 promisc: %v", err)
	}
	if err := n.Handle.LinkSetUp(v0); err != nil {
		t.Fatalf("veth0 up: %v", err)
	}

	tests := []struct {
		name string
		kind string
		tun  *link.Tun // what the link must read, besides matching netlink
	}{
		{"lo", "", nil},
		{"br0", "bridge", nil},
		{"veth0", "veth", nil},
		{"veth1", "veth", nil},
		{"tap0", "tun", &link.Tun{Tap: true, Owner: -1, Group: -1, Persist: true, Carrier: true}},
		{"tap1", "tun", &link.Tun{Tap: true, Owner: 1000, Group: 1001, MultiQueue: true, VnetHdr: true, Queues: 1, Carrier: true}},
		{"tun0", "tun", &link.Tun{Owner: 0, Group: -1, Persist: true, Carrier: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ByName(tt.name)
			if err != nil {
				t.Fatalf("ByName(%q): %v", tt.name, err)
			}
			if got.Kind != tt.kind {
				t.Errorf("ByName(%q).Kind = %q, want %q", tt.name, got.Kind, tt.kind)
			}
			if diff := cmp.Diff(tt.tun, got.Tun); diff != "" {
				t.Errorf("ByName(%q).Tun (-want +got):\n%s", tt.name, diff)
			}
			want := fromNetlinkPort(t, n, tt.name, got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ByName(%q) against netlink (-want +got):\n%s", tt.name, diff)
			}
			byIndex, err := c.ByIndex(got.Index)
			if err != nil {
				t.Fatalf("ByIndex(%d): %v", got.Index, err)
			}
			if diff := cmp.Diff(got, byIndex); diff != "" {
				t.Errorf("ByIndex(%d) against ByName(%q) (-want +got):\n%s", got.Index, tt.name, diff)
			}
		})
	}

	// The port the test made: on br0, promiscuous, up.
	v, err := c.ByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	if v.MasterIndex != br.Index || !v.Promisc() || !v.Up() || v.MTU != 1400 {
		t.Errorf("veth0 = master %d, promisc %v, up %v, mtu %d; want master %d, promisc, up, mtu 1400",
			v.MasterIndex, v.Promisc(), v.Up(), v.MTU, br.Index)
	}
}

func TestSetters(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)
	br := n.AddBridge(t, "br0", 0)
	n.AddTap(t, "tap0")
	tap, err := c.ByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0xfe, 0x54, 0x00, 0x12, 0x34, 0x56}

	steps := []struct {
		name string
		set  func() error
		want func(l *link.Link) // changes the expected link
	}{
		{"mtu", func() error { return c.SetMTU(tap, 1400) }, func(l *link.Link) { l.MTU = 1400 }},
		{"mac", func() error { return c.SetMAC(tap, mac) }, func(l *link.Link) { l.MAC = mac }},
		{"master", func() error { return c.SetMaster(tap, br.Index) }, func(l *link.Link) {
			l.MasterIndex = br.Index
			l.BridgePort = &link.BridgePort{Learning: true, UnicastFlood: true} // a new port's flags
		}},
		{"promisc on", func() error { return c.SetPromisc(tap, true) }, func(l *link.Link) { l.Flags |= unix.IFF_PROMISC }},
		{"up", func() error { return c.SetUp(tap, true) }, func(l *link.Link) { l.Flags |= unix.IFF_UP }},
		{"promisc off", func() error { return c.SetPromisc(tap, false) }, func(l *link.Link) { l.Flags &^= unix.IFF_PROMISC }},
		{"nomaster", func() error { return c.SetMaster(tap, 0) }, func(l *link.Link) { l.MasterIndex, l.BridgePort = 0, nil }},
		{"nomaster again", func() error { return c.SetMaster(tap, 0) }, func(*link.Link) {}},
		{"down", func() error { return c.SetUp(tap, false) }, func(l *link.Link) { l.Flags &^= unix.IFF_UP }},
	}
	want := *tap
	for _, s := range steps {
		if err := s.set(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		s.want(&want)
		got, err := c.ByIndex(tap.Index)
		if err != nil {
			t.Fatalf("%s: ByIndex: %v", s.name, err)
		}
		// ifi_flags also carry the kernel's own (IFF_LOWER_UP, IFF_RUNNING
		// when up): compare only the ones the setters change.
		const mask = unix.IFF_UP | unix.IFF_PROMISC
		gotCmp, wantCmp := *got, want
		gotCmp.Flags &= mask
		wantCmp.Flags &= mask
		if diff := cmp.Diff(&wantCmp, &gotCmp); diff != "" {
			t.Errorf("after %s (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(fromNetlinkPort(t, n, "tap0", got), got); diff != "" {
			t.Errorf("after %s, against netlink (-want +got):\n%s", s.name, diff)
		}
	}
}

func TestErrors(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)
	n.AddTap(t, "tap0")
	tap, err := c.ByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}
	if err := n.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	v0, err := c.ByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	gone := &link.Link{Index: 99999, Name: "gone0"}

	tests := []struct {
		name     string
		err      error
		errno    unix.Errno
		notFound bool
	}{
		{"ByName of a missing link", get(c.ByName("nosuch0")), unix.ENODEV, true},
		{"ByIndex of a missing link", get(c.ByIndex(99999)), unix.ENODEV, true},
		{"ByIndex(0)", get(c.ByIndex(0)), unix.ENODEV, true},
		{"SetMTU of a missing link", c.SetMTU(gone, 1400), unix.ENODEV, true},
		{"SetMAC of a missing link", c.SetMAC(gone, net.HardwareAddr{0xfe, 0, 0, 0, 0, 1}), unix.ENODEV, true},
		{"SetMaster of a missing link", c.SetMaster(gone, 1), unix.ENODEV, true},
		{"SetPromisc of a missing link", c.SetPromisc(gone, true), unix.ENODEV, true},
		{"SetUp of a missing link", c.SetUp(gone, true), unix.ENODEV, true},
		{"SetMTU too large", c.SetMTU(tap, 1<<20), unix.EINVAL, false},
		// The kernel answers a missing master with EINVAL.
		{"SetMaster to a missing master", c.SetMaster(tap, 99999), unix.EINVAL, false},
		{"SetMaster to a veth", c.SetMaster(tap, v0.Index), unix.EOPNOTSUPP, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.errno) {
				t.Fatalf("err = %v, want %v", tt.err, tt.errno)
			}
			if got := errors.Is(tt.err, link.ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", tt.err, got, tt.notFound)
			}
		})
	}

	// The Conn keeps working after errors: nothing is left unread.
	if _, err := c.ByName("tap0"); err != nil {
		t.Errorf("ByName after errors: %v", err)
	}

	var ne *link.NameError
	if _, err := c.ByName("tap0:1"); !errors.As(err, &ne) {
		t.Errorf("ByName(%q) = %v, want a *NameError", "tap0:1", err)
	}
}

func get(_ *link.Link, err error) error { return err }

// The socket stays in the namespace it was opened in: a second namespace
// with its own tap0 does not see the first one's.
func TestConnStaysInItsNamespace(t *testing.T) {
	a, b := nstest.New(t), nstest.New(t)
	ca, cb := open(t, a), open(t, b)
	a.AddTap(t, "tapa")
	b.AddTap(t, "tapb")
	if _, err := ca.ByName("tapb"); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("namespace a: ByName(tapb) = %v, want ErrNotFound", err)
	}
	if _, err := cb.ByName("tapb"); err != nil {
		t.Errorf("namespace b: ByName(tapb) = %v", err)
	}
}

func TestClosed(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ByName("lo"); !errors.Is(err, unix.EBADF) {
		t.Errorf("ByName on a closed Conn = %v, want EBADF", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
