// Package bridge owns the bridge side of a port: it finds a bridge and
// checks it, adds a port to it and removes one, and tells which bridge a
// port is on: a Linux bridge over netlink, an Open vSwitch bridge through
// ovs-vsctl.
//
// A Bridge has a Kind; each kind attaches, detaches and verifies in its own
// way. A Linux bridge port has flags (isolated, learning, unicast flooding)
// and static forwarding entries; an Open vSwitch port has VLAN settings.
package bridge

import (
	"errors"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

var (
	// ErrNotFound is returned (wrapped) when no interface has the name.
	ErrNotFound = errors.New("not found")
	// ErrNotBridge is returned (wrapped) when the interface is not a
	// bridge (a bond, a VRF, a plain NIC).
	ErrNotBridge = errors.New("not a bridge")
)

// A Kind is the kind of a bridge.
type Kind int

// The kinds of bridge.
const (
	// Linux is the kernel's own bridge (ip link add type bridge).
	Linux Kind = iota
	// OpenVSwitch is a bridge of Open vSwitch, driven through ovs-vsctl.
	OpenVSwitch
)

func (k Kind) String() string {
	switch k {
	case Linux:
		return "linux"
	case OpenVSwitch:
		return "openvswitch"
	}
	return fmt.Sprintf("kind %d", int(k))
}

// A Bridge is a bridge as Get, Find or Of found it.
type Bridge struct {
	Name  string
	Index int // ifindex of the bridge's own interface
	Kind  Kind
	MTU   int  // of the bridge's own interface
	Up    bool // IFF_UP as set by the user
	// Switch is the Open vSwitch of a bridge of kind OpenVSwitch; nil for
	// a Linux bridge.
	Switch *OVS
}

// Get returns the bridge called name.
//
// Equivalent to: ip -d link show dev $name type bridge
func Get(c *link.Conn, name string) (*Bridge, error) {
	l, err := c.ByName(name)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil, fmt.Errorf("bridge %s %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	return fromLink(l)
}

// Of returns the bridge port is a port of, or nil if port has no master.
// A master that is not a bridge is an error wrapping ErrNotBridge.
//
// Equivalent to: ip -d link show dev $port (its "master")
func Of(c *link.Conn, port *link.Link) (*Bridge, error) {
	if port.MasterIndex == 0 {
		return nil, nil
	}
	m, err := c.ByIndex(port.MasterIndex)
	if err != nil {
		return nil, fmt.Errorf("look up master %d: %w", port.MasterIndex, err)
	}
	b, err := fromLink(m)
	if err != nil {
		return nil, fmt.Errorf("enslaved to %s, which is %w (%s)", m.Name, ErrNotBridge, typeOf(m))
	}
	return b, nil
}

func fromLink(l *link.Link) (*Bridge, error) {
	if l.Kind != "bridge" {
		return nil, fmt.Errorf("%s is %w (%s)", l.Name, ErrNotBridge, typeOf(l))
	}
	return &Bridge{Name: l.Name, Index: l.Index, Kind: Linux, MTU: l.MTU, Up: l.Up()}, nil
}

// typeOf names the type of an interface in messages, as ip -d link and
// vishvananda/netlink call it: its link kind, "tuntap" for a tun or tap,
// "device" for a NIC without one.
func typeOf(l *link.Link) string {
	switch l.Kind {
	case "":
		return "device"
	case "tun":
		return "tuntap"
	}
	return l.Kind
}

// Attach makes port a port of b; a port of another Linux bridge moves to
// b. A bridge that vanished since Get is named as such in the error (the
// kernel says only EINVAL). Call Verify afterwards: the attach goes by
// index, which cannot tell a bridge renamed or set down meanwhile.
//
// A bridge whose MAC may still be the kernel's choice gets its current
// MAC set explicitly first, so that it never takes a port's (see pinMAC).
//
// Equivalent to: ip link set dev $b address $(its address);
// ip link set dev $port master $b
func (b *Bridge) Attach(c *link.Conn, port *link.Link) error {
	if err := b.pinMAC(c); err != nil {
		if gerr := b.gone(c, err); gerr != err {
			return fmt.Errorf("attach %s to %s: %w", port.Name, b.Name, gerr)
		}
		return fmt.Errorf("attach %s to %s: fix the bridge's MAC: %w", port.Name, b.Name, err)
	}
	if err := c.SetMaster(port, b.Index); err != nil {
		return fmt.Errorf("attach %s to %s: %w", port.Name, b.Name, b.gone(c, err))
	}
	return nil
}

// Detach takes port off b.
//
// Equivalent to: ip link set dev $port nomaster
func (b *Bridge) Detach(c *link.Conn, port *link.Link) error {
	if err := c.SetMaster(port, 0); err != nil {
		return fmt.Errorf("detach %s from %s: %w", port.Name, b.Name, err)
	}
	return nil
}

// Verify checks, once port has joined b, that b is still the bridge Get
// found, by name. Whether it is up does not matter: a port may join a bridge
// that comes up later.
//
// An Open vSwitch bridge is asked instead whether ovs-vswitchd opened the
// port (see OVS.Applied).
func (b *Bridge) Verify(c *link.Conn, port *link.Link) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("attach %s to %s: "+format, append([]any{port.Name, b.Name}, a...)...)
	}
	if b.Kind == OpenVSwitch {
		if err := b.Switch.Applied(port.Name); err != nil {
			return fail("%w", err)
		}
		return nil
	}
	l, err := c.ByIndex(b.Index)
	switch {
	case errors.Is(err, link.ErrNotFound):
		return fail("bridge %s disappeared", b.Name)
	case err != nil:
		return fail("look up bridge: %w", err)
	case l.Name != b.Name:
		return fail("bridge %s was renamed to %s", b.Name, l.Name)
	}
	return nil
}

// gone explains a failed attach by the bridge having vanished.
func (b *Bridge) gone(c *link.Conn, err error) error {
	if _, lerr := c.ByIndex(b.Index); errors.Is(lerr, link.ErrNotFound) {
		return fmt.Errorf("bridge %s disappeared", b.Name)
	}
	return err
}
