package integration

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestBridgeMACNotAdopted: a Linux bridge whose MAC the kernel chose takes
// its lowest port's MAC, and the holder of a tap's descriptor may set any
// MAC on it (SIOCSIFHWADDR). Once qemu-ifup made a tap a port, a lower
// MAC on that tap must not become the bridge's, nor the tap's own as it
// joins: on an empty bridge, and on one that already took an uplink's MAC.
func TestBridgeMACNotAdopted(t *testing.T) {
	low := net.HardwareAddr{0, 0, 0, 0, 0, 1}
	for _, uplink := range []bool{false, true} {
		name := map[bool]string{false: "empty bridge", true: "bridge with an uplink"}[uplink]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			br := e.ns.AddBridge(t, "virbr0", 0)
			if uplink {
				veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MasterIndex: br.Index,
					HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}}, PeerName: "eth0p"}
				if err := e.ns.Handle.LinkAdd(veth); err != nil {
					t.Fatal(err)
				}
			}
			e.ns.AddTap(t, "tap0")
			before := e.port("virbr0").MAC
			if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
				t.Fatalf("qemu-ifup tap0: %v", r)
			}
			if got := e.port("virbr0").MAC; got != before {
				t.Errorf("virbr0's MAC changed from %s to %s as tap0 joined", before, got)
			}
			// What the tap's holder may do; netlink stands in for
			// its ioctl.
			if err := e.ns.Handle.LinkSetHardwareAddr(e.ns.Link(t, "tap0"), low); err != nil {
				t.Fatal(err)
			}
			if got := e.port("tap0").MAC; got != low.String() {
				t.Fatalf("tap0 MAC %s, want %s", got, low)
			}
			if after := e.port("virbr0").MAC; after != before {
				t.Errorf("virbr0's MAC changed from %s to %s: the bridge took its port's MAC", before, after)
			}
		})
	}
}

// TestBridgeMACPinKeepsNeighbours: pinning the bridge's MAC flushes its
// neighbours, static ones too, so only the first tap pins it. Where the
// helper's sysfs is not its namespace's (ip netns exec, nsenter --net),
// a later tap must not pin it again: the host's static neighbour on the
// bridge survives it.
func TestBridgeMACPinKeepsNeighbours(t *testing.T) {
	e := newEnv(t)
	br := e.ns.AddBridge(t, "virbr0", 0)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MasterIndex: br.Index,
		HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}}, PeerName: "eth0p"}
	if err := e.ns.Handle.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	e.ns.AddTap(t, "tap0")
	e.ns.AddTap(t, "tap1")
	if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup tap0: %v", r)
	}
	brl := e.ns.Link(t, "virbr0")
	addr, _ := netlink.ParseAddr("10.9.0.1/24")
	if err := e.ns.Handle.AddrAdd(brl, addr); err != nil {
		t.Fatal(err)
	}
	neigh := &netlink.Neigh{LinkIndex: brl.Attrs().Index, State: netlink.NUD_PERMANENT,
		IP: net.ParseIP("10.9.0.7"), HardwareAddr: net.HardwareAddr{0x02, 0x11, 0x11, 0x11, 0x11, 0x11}}
	if err := e.ns.Handle.NeighAdd(neigh); err != nil {
		t.Fatal(err)
	}
	if r := e.run("qemu-ifup", "tap1"); r.code != 0 {
		t.Fatalf("qemu-ifup tap1: %v", r)
	}
	ns, err := e.ns.Handle.NeighList(brl.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.IP.Equal(neigh.IP) {
			return
		}
	}
	t.Errorf("the static neighbour 10.9.0.7 on virbr0 is gone after qemu-ifup tap1: %v", ns)
}
