package link_test

import (
	"errors"
	"net"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

func names(ls []*link.Link) []string {
	var s []string
	for _, l := range ls {
		s = append(s, l.Name)
	}
	slices.Sort(s)
	return s
}

// TestList lists links by kind and by master, reads a tap nobody holds
// (persistent, no queue) and an alias, and deletes a tap.
func TestList(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)
	br := n.AddBridge(t, "br0", 0)
	n.AddBridge(t, "br1", 0)
	n.AddTap(t, "tap0") // persistent, held by nobody
	addTun(t, n, tunSpec{name: "tap1", flags: unix.IFF_TAP | unix.IFF_NO_PI, owner: -1, group: -1})
	tap1, err := c.ByName("tap1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetMaster(tap1, br.Index); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAlias(tap1, "made by a test"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		filter link.Filter
		want   []string
	}{
		{link.Filter{Kind: "tun"}, []string{"tap0", "tap1"}},
		{link.Filter{Kind: "bridge"}, []string{"br0", "br1"}},
		{link.Filter{MasterIndex: br.Index}, []string{"tap1"}},
		{link.Filter{Kind: "tun", MasterIndex: br.Index}, []string{"tap1"}},
		{link.Filter{}, []string{"br0", "br1", "lo", "tap0", "tap1"}},
	}
	for _, tt := range tests {
		got, err := c.List(tt.filter)
		if err != nil {
			t.Fatalf("List(%+v): %v", tt.filter, err)
		}
		if !slices.Equal(names(got), tt.want) {
			t.Errorf("List(%+v) = %q, want %q", tt.filter, names(got), tt.want)
		}
	}

	tap0, err := c.ByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	if tap0.Tun.Held() || !tap0.Tun.Persist {
		t.Errorf("tap0: %+v, want persistent and held by nobody", tap0.Tun)
	}
	tap1, err = c.ByName("tap1")
	if err != nil {
		t.Fatal(err)
	}
	if !tap1.Tun.Held() || tap1.Alias != "made by a test" {
		t.Errorf("tap1: %+v, alias %q; want held, alias %q", tap1.Tun, tap1.Alias, "made by a test")
	}

	if err := c.Delete(tap0); err != nil {
		t.Fatalf("Delete(tap0): %v", err)
	}
	if n.Exists("tap0") {
		t.Error("tap0 still exists")
	}
	if err := c.Delete(tap0); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("Delete of a deleted link: %v, want ErrNotFound", err)
	}
}

func TestNamesOfKind(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-b", 0)
	ns.AddBridge(t, "br-a", 0)
	ns.AddTap(t, "tap0")
	var got []string
	err := ns.Do(func() error {
		c, err := link.Open()
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = c.NamesOfKind("bridge")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"br-a", "br-b"}; !slices.Equal(got, want) {
		t.Errorf("NamesOfKind(bridge) = %q, want %q", got, want)
	}
}

// TestLowestPortMAC reads the lowest MAC among a bridge's ports only:
// not another bridge's port, nor a link of no bridge, with lower MACs.
func TestLowestPortMAC(t *testing.T) {
	n := nstest.New(t)
	c := open(t, n)
	br := n.AddBridge(t, "br0", 0)
	other := n.AddBridge(t, "br1", 0)
	empty := n.AddBridge(t, "br2", 0)
	for _, p := range []struct {
		name, mac string
		master    int
	}{
		{"tap0", "02:00:00:00:00:30", br.Index},
		{"tap1", "02:00:00:00:00:20", br.Index},
		{"tap2", "02:00:00:00:00:40", br.Index},
		{"tap3", "02:00:00:00:00:10", other.Index},
		{"tap4", "02:00:00:00:00:01", 0},
	} {
		n.AddTap(t, p.name)
		l, err := c.ByName(p.name)
		if err != nil {
			t.Fatal(err)
		}
		mac, _ := net.ParseMAC(p.mac)
		if err := c.SetMAC(l, mac); err != nil {
			t.Fatal(err)
		}
		if p.master != 0 {
			if err := c.SetMaster(l, p.master); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tt := range []struct {
		master int
		want   string
	}{
		{br.Index, "02:00:00:00:00:20"},
		{other.Index, "02:00:00:00:00:10"},
		{empty.Index, ""},
	} {
		got, err := c.LowestPortMAC(tt.master)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != tt.want {
			t.Errorf("LowestPortMAC(%d) = %q, want %q", tt.master, got, tt.want)
		}
	}
}
