package integration

import (
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// addrRoute gives the bridge an address and, with gw, a default route
// through it.
func addrRoute(t *testing.T, e *env, l netlink.Link, cidr string, gw net.IP) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ns.Handle.AddrAdd(l, a); err != nil {
		t.Fatal(err)
	}
	if gw != nil {
		if err := e.ns.Handle.RouteAdd(&netlink.Route{Gw: gw, LinkIndex: l.Attrs().Index}); err != nil {
			t.Fatal(err)
		}
	}
}

// After record, environment and config: virbr0 when it exists, else the
// Linux bridge that carries the default route, as Debian's /etc/qemu-ifup.
func TestBridgeFromDefaultRoute(t *testing.T) {
	e := newEnv(t)
	br0 := e.ns.AddBridge(t, "br0", 0)
	addrRoute(t, e, br0, "192.168.122.1/24", net.IPv4(192, 168, 122, 254))
	e.ns.AddTap(t, "tap0")
	r := e.run("qemu-ifup", "tap0")
	if r.code != 0 || !strings.Contains(r.stderr, "qemu-ifup: tap0: attach to br0 (bridge from default route)") {
		t.Fatalf("qemu-ifup without virbr0: %v, want tap0 attached to br0 (bridge from default route)", r)
	}
	if m := e.ns.MasterName(t, e.ns.Link(t, "tap0")); m != "br0" {
		t.Errorf("tap0: master %q, want br0", m)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 0 {
		t.Errorf("qemu-ifup --check: %v", r)
	}

	// virbr0, once it exists, comes before the default route.
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "tap1")
	if r := e.run("qemu-ifup", "tap1"); r.code != 0 || !strings.Contains(r.stderr, "attach to virbr0 (bridge from default)") {
		t.Errorf("qemu-ifup with virbr0: %v", r)
	}
	// The config still comes before both.
	e.ns.AddBridge(t, "br-conf", 0)
	e.writeConfig("[Defaults]\nBridge=br-conf\n")
	e.ns.AddTap(t, "tap2")
	if r := e.run("qemu-ifup", "tap2"); r.code != 0 || e.ns.MasterName(t, e.ns.Link(t, "tap2")) != "br-conf" {
		t.Errorf("qemu-ifup with a config: %v, want tap2 on br-conf", r)
	}
}

// Neither virbr0 nor a bridge on the default route: the error names both,
// and nothing changes.
func TestNoDefaultBridge(t *testing.T) {
	e := newEnv(t)
	e.ns.AddTap(t, "tap0")
	r := e.run("qemu-ifup", "tap0")
	want := "qemu-ifup: tap0: no bridge given, virbr0 does not exist and there is no default route"
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) {
		t.Errorf("qemu-ifup without any bridge: %v, want exit 1 and %q", r, want)
	}
	// A default route through a plain interface is no bridge either.
	if err := e.ns.Handle.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0p"}); err != nil {
		t.Fatal(err)
	}
	eth0 := e.ns.Link(t, "eth0")
	if err := e.ns.Handle.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}
	addrRoute(t, e, eth0, "10.0.0.2/24", net.IPv4(10, 0, 0, 1))
	r = e.run("qemu-ifup", "tap0")
	want = "qemu-ifup: tap0: no bridge given, virbr0 does not exist and the default route goes via eth0, not a Linux bridge"
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) {
		t.Errorf("qemu-ifup with the default route via eth0: %v, want exit 1 and %q", r, want)
	}
	if m := e.ns.MasterName(t, e.ns.Link(t, "tap0")); m != "" {
		t.Errorf("tap0 attached to %s", m)
	}
}

// A bridge that exists but is down takes the tap anyway, with a warning
// (it may come up later in boot); --check reports it.
func TestBridgeDown(t *testing.T) {
	e := newEnv(t)
	br := e.ns.AddBridge(t, "br0", 0)
	if err := e.ns.Handle.LinkSetDown(br); err != nil {
		t.Fatal(err)
	}
	e.ns.AddTap(t, "tap0")
	e.vars = []string{"QEMU_BRIDGE=br0"}
	r := e.run("qemu-ifup", "--quiet", "tap0")
	if want := "qemu-ifup: tap0: warning: bridge br0 is down; attaching anyway (start it with: ip link set br0 up)\n"; r.code != 0 || r.stderr != want {
		t.Errorf("qemu-ifup on a down bridge: %v, want exit 0 and %q", r, want)
	}
	if m := e.ns.MasterName(t, e.ns.Link(t, "tap0")); m != "br0" {
		t.Errorf("tap0: master %q, want br0", m)
	}
	r = e.run("qemu-ifup", "--check", "tap0")
	if r.code != 1 || !strings.Contains(r.stderr, "tap0: bridge br0 is down (start it with: ip link set br0 up)") {
		t.Errorf("qemu-ifup --check on a down bridge: %v, want exit 1 naming it", r)
	}
	if err := e.ns.Handle.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 0 {
		t.Errorf("qemu-ifup --check once br0 is up: %v", r)
	}
}
