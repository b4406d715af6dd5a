package bridge

import (
	"errors"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// Find returns the bridge called name: a Linux bridge, or, with o, an Open
// vSwitch bridge. OVS is asked only about an interface of a kind an OVS
// bridge's own interface has ("openvswitch" with the kernel datapath,
// "tun" with the userspace one), so that finding a Linux bridge, or
// refusing a veth, never runs ovs-vsctl.
//
// Equivalent to: ip -d link show dev $name; ovs-vsctl br-exists $name
func Find(c *link.Conn, o *OVS, name string) (*Bridge, error) {
	l, err := c.ByName(name)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil, fmt.Errorf("bridge %s %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	if l.Kind == "bridge" || o == nil || (l.Kind != "openvswitch" && l.Kind != "tun") {
		return fromLink(l)
	}
	ok, err := o.IsOVSBridge(name)
	switch {
	case err != nil && l.Kind == "tun" && errors.Is(err, ErrOVSUnavailable):
		// A tap is an OVS bridge only for a running userspace datapath;
		// most are not bridges at all: say both, OVS's failure first.
		_, nerr := fromLink(l)
		return nil, fmt.Errorf("%w; without it, %w", err, nerr)
	case err != nil:
		return nil, err
	case !ok:
		return fromLink(l)
	}
	return &Bridge{Name: l.Name, Index: l.Index, Kind: OpenVSwitch, MTU: l.MTU, Up: l.Up(), Switch: o}, nil
}

// OVSBridgeOf returns the Open vSwitch bridge that has port, or nil if
// none has. The kernel cannot tell: a kernel datapath's ports all have
// ovs-system as their master, a userspace datapath's have none.
//
// Equivalent to: ovs-vsctl iface-to-br $port
func OVSBridgeOf(c *link.Conn, o *OVS, port *link.Link) (*Bridge, error) {
	name, err := o.PortBridge(port.Name)
	if err != nil || name == "" {
		return nil, err
	}
	b := &Bridge{Name: name, Kind: OpenVSwitch, Switch: o}
	// The bridge's own interface gives its index and MTU where it is in
	// this namespace; the port is OVS's all the same where it is not.
	if l, err := c.ByName(name); err == nil {
		b.Index, b.MTU, b.Up = l.Index, l.MTU, l.Up()
	}
	return b, nil
}

// IsOVSMaster reports whether a port's kernel master is the one a kernel
// datapath of Open vSwitch gives all its ports (ovs-system, kind
// "openvswitch").
func IsOVSMaster(c *link.Conn, port *link.Link) bool {
	if port.MasterIndex == 0 {
		return false
	}
	m, err := c.ByIndex(port.MasterIndex)
	return err == nil && m.Kind == "openvswitch"
}

// Same reports whether a and b are the same bridge (both nil counts).
func Same(a, b *Bridge) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Kind == b.Kind && a.Name == b.Name && (a.Kind == OpenVSwitch || a.Index == b.Index)
}
