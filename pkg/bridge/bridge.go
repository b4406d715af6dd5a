package bridge

import (
	"errors"
	"fmt"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// ErrNotBridge is returned (wrapped) when the interface is not a bridge
// (a bond, a VRF, a plain NIC). A bridge that does not exist is a
// *NotFoundError.
var ErrNotBridge = errors.New("not a bridge")

// A Bridge is one bridge, of the kind its type says, as Host found it.
type Bridge interface {
	// Name is the bridge's name.
	Name() string
	// String describes the bridge in a step: its name, with its kind
	// where a plain name could mislead ("Open vSwitch bridge ovsbr0").
	String() string
	// Kind names the bridge's kind in listings: "linux-bridge",
	// "openvswitch".
	Kind() string
	// PortMTU is the MTU a port with the settings s gets when none is
	// given: the MTU of the bridge's own interface, so that adding the
	// port never lowers it (0 when unknown), or, for an OVN logical
	// port, the MTU the chassis' tunnels leave.
	PortMTU(c *link.Conn, s PortSettings) (int, error)
	// Down reports that the bridge is set down: a port joins it all the
	// same, as it may come up later in boot.
	Down() bool
	// Is reports whether o is this same bridge.
	Is(o Bridge) bool
	// Has reports whether the kernel, asked nothing more, says that port
	// is a port of this bridge; false when it cannot tell.
	Has(port *link.Link) bool
	// Check refuses the settings this kind cannot carry, with a
	// *SettingError.
	Check(s PortSettings) error
	// Join reads port and returns the steps that make it a port of this
	// bridge with the MTU mtu and the settings s: none when it is one
	// already, as asked. from is the bridge it is on now (nil for none),
	// of whatever kind.
	Join(c *link.Conn, port *link.Link, from Bridge, mtu int, s PortSettings) ([]Step, error)
	// Leave returns the step that takes port off this bridge. With last,
	// no step follows it that could fail and call for its undo, so it
	// reads nothing to undo it with.
	Leave(c *link.Conn, port *link.Link, last bool) (Step, error)
	// Verify checks, once port has joined, that it is this bridge's port
	// as asked: that the bridge is still the one found, or that the
	// switch applied the port.
	Verify(c *link.Conn, port *link.Link) error
}

// PortSettings are the settings of a port that depend on its bridge's
// kind. The zero PortSettings asks for nothing beyond the attach.
type PortSettings struct {
	// VLAN is the port's access VLAN; 0 for none.
	VLAN int
	// Trunks are the VLANs the port trunks; empty for none given.
	Trunks VLANSet
	// Flags are a port's flags; those not given are left as the port has
	// them.
	Flags PortFlags
	// GuestMAC is the MAC of the guest's NIC on the port, as
	// net.HardwareAddr.String gives it, or "" when unknown: for a static
	// forwarding entry where the bridge does not learn, or to name the
	// guest in the switch's records.
	GuestMAC string
	// VMName names the guest in the switch's records; "" when unknown.
	VMName string
	// VMUUID is the guest's UUID (QEMU's -uuid) for the switch's
	// records; "" when unknown.
	VMUUID string
	// LogicalPort is the OVN logical switch port the port is, as its
	// interface's external_ids:iface-id; "" for none. The port then
	// joins only once OVN has installed it (see OVS.WaitInstalled).
	LogicalPort string
	// OVNWait bounds the wait for OVN to install a logical port; 0 is
	// DefaultOVNWait.
	OVNWait time.Duration
	// Inbound limits the traffic to the guest, Outbound the traffic
	// from it.
	Inbound, Outbound Limit
	// DenySpoofing drops the frames from the guest whose source MAC is
	// not GuestMAC, the ARP and IP packets whose source is not among
	// Addrs (when Addrs is not empty), and the replies of a DHCP server
	// and the IPv6 router advertisements the guest sends.
	DenySpoofing bool
	// Addrs are the addresses the guest may send from, with
	// DenySpoofing.
	Addrs Addrs
}

// guarded reports whether s asks for rules on the frames from the guest.
func (s PortSettings) guarded() bool { return s.DenySpoofing || s.Outbound.Set() }

// checkGuard refuses the limits and guards that are incomplete whatever
// the kind: a burst without its rate, a guard against spoofing without
// the guest's MAC, addresses without the guard.
func checkGuard(s PortSettings) error {
	switch {
	case s.Inbound.Burst != 0 && !s.Inbound.Set():
		return &SettingError{Setting: SettingInboundBurst, Value: FormatBurst(s.Inbound.Burst), Reason: "is given without an inbound rate"}
	case s.Outbound.Burst != 0 && !s.Outbound.Set():
		return &SettingError{Setting: SettingOutboundBurst, Value: FormatBurst(s.Outbound.Burst), Reason: "is given without an outbound rate"}
	case s.DenySpoofing && s.GuestMAC == "":
		return &SettingError{Setting: SettingSpoofing, Value: "deny", Reason: "needs the guest's MAC, which is not known"}
	case !s.Addrs.IsEmpty() && !s.DenySpoofing:
		return &SettingError{Setting: SettingAddrs, Value: s.Addrs.String(), Reason: "apply only where spoofing is denied"}
	}
	return nil
}

// An Action is what a Step does to a port.
type Action int

// The actions.
const (
	// ActAttach makes the port a port of the bridge, or moves it there.
	ActAttach Action = iota
	// ActDetach takes the port off its bridge.
	ActDetach
	// ActConfigure reconfigures a port already on its bridge.
	ActConfigure
	// ActFlag sets one flag of the port.
	ActFlag
	// ActFDB adds the static forwarding entry for the guest's MAC.
	ActFDB
	// ActGuard sets, changes or removes the rules on the frames from the
	// guest: spoofing and the outbound limit.
	ActGuard
	// ActShape sets, changes or removes the inbound limit.
	ActShape
	// ActWait waits for the switch to make the port live (OVN's
	// ovn-installed); it changes nothing itself.
	ActWait
)

// A Step is one change to a port, with all it needs to make and undo it
// on the port it is given.
type Step struct {
	Action Action
	// Desc says what the step does, for dry runs and logs.
	Desc string
	// Apply makes the change.
	Apply func(c *link.Conn, port *link.Link) error
	// Undo reverts it; nil when there is nothing to undo with (see
	// Bridge.Leave).
	Undo func(c *link.Conn, port *link.Link) error
	// Verify, when set, reads back after Apply what Apply alone cannot
	// be sure of; a failure then undoes the step too.
	Verify func(c *link.Conn, port *link.Link) error
	// Uncertain says that a failed Apply may have made the change all
	// the same (a switch that recorded it, then timed out applying it):
	// its Undo then runs too.
	Uncertain bool
	// Warning, when set, is what the caller is to warn of when it plans
	// the step (a setting the host cannot honour in full).
	Warning string
}

// A Host reaches the bridges of one host, of every kind it can ask.
type Host struct {
	// OVS reaches Open vSwitch; nil asks only the kernel, for a host of
	// Linux bridges.
	OVS *OVS
}

// A kind finds the bridges of one kind.
type kind interface {
	// named returns the bridge of this kind whose own interface is l; nil
	// when l is none of this kind.
	named(c *link.Conn, l *link.Link) (Bridge, error)
	// holding returns the bridge of this kind that has port, whose kernel
	// master is master (nil for none); nil when none of this kind has it.
	holding(c *link.Conn, port, master *link.Link, h Hint) (Bridge, error)
}

// kinds are the kinds of bridge h can ask about, cheapest first.
func (h Host) kinds() []kind {
	return []kind{linuxKind{}, ovsKind{h.OVS}}
}

// A Hint says what the caller expects of a port's bridge, so that a kind
// whose answer costs a process is asked only when it may have the port.
type Hint struct {
	// Bridge is the bridge the port is to join, as Find found it; nil
	// when there is none.
	Bridge Bridge
	// Name is the bridge the port is expected on, when Bridge is nil.
	Name string
	// Anywhere asks every kind, whatever it costs; a kind that cannot be
	// asked then has no port.
	Anywhere bool
	// Listing is set by a caller that only shows what it finds: a port
	// whose kernel master says which kind has it is that kind's even when
	// the kind cannot say which bridge (the bridge then has no name).
	Listing bool
}

// Find returns the bridge called name, of whichever kind it is.
//
// Equivalent to: ip -d link show dev $name; ovs-vsctl br-exists $name
func (h Host) Find(c *link.Conn, name string) (Bridge, error) {
	l, err := c.ByName(name)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil, &NotFoundError{Name: name}
		}
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	for _, k := range h.kinds() {
		if b, err := k.named(c, l); b != nil || err != nil {
			return b, err
		}
	}
	return nil, notBridge(l)
}

// PortOf returns the bridge port is a port of, of whichever kind, or nil
// if it is on none. A kernel master that is no bridge is an error
// wrapping ErrNotBridge.
//
// Equivalent to: ip -d link show dev $port (its "master"); ovs-vsctl
// iface-to-br $port
func (h Host) PortOf(c *link.Conn, port *link.Link, hint Hint) (Bridge, error) {
	if hint.Bridge != nil && hint.Bridge.Has(port) {
		return hint.Bridge, nil
	}
	var master *link.Link
	if port.MasterIndex != 0 {
		m, err := c.ByIndex(port.MasterIndex)
		if err != nil {
			return nil, fmt.Errorf("look up master %d: %w", port.MasterIndex, err)
		}
		master = m
	}
	for _, k := range h.kinds() {
		if b, err := k.holding(c, port, master, hint); b != nil || err != nil {
			return b, err
		}
	}
	if master != nil {
		return nil, fmt.Errorf("enslaved to %s, which is %w (%s)", master.Name, ErrNotBridge, master.Type())
	}
	return nil, nil
}

// notBridge is the error for an interface l that no kind calls a bridge.
func notBridge(l *link.Link) error {
	return fmt.Errorf("%s is %w (%s)", l.Name, ErrNotBridge, l.Type())
}

// A NotFoundError is a bridge that does not exist; it matches
// link.ErrNotFound, and errors.As tells it from a port that does not.
type NotFoundError struct {
	// Name is the bridge asked for.
	Name string
}

func (e *NotFoundError) Error() string { return "bridge " + e.Name + " not found" }

// Unwrap returns link.ErrNotFound.
func (e *NotFoundError) Unwrap() error { return link.ErrNotFound }

// A Setting is one of the PortSettings.
type Setting int

// The settings a kind may refuse.
const (
	SettingVLAN Setting = iota
	SettingTrunks
	// SettingFlag is one of PortSettings.Flags (SettingError.Flag).
	SettingFlag
	SettingInboundRate
	SettingInboundBurst
	SettingOutboundRate
	SettingOutboundBurst
	SettingSpoofing
	SettingAddrs
	// SettingLogicalPort is PortSettings.LogicalPort.
	SettingLogicalPort
)

var settingNames = [...]string{
	SettingVLAN: "access VLAN", SettingTrunks: "trunk VLANs",
	SettingInboundRate: "inbound rate", SettingInboundBurst: "inbound burst",
	SettingOutboundRate: "outbound rate", SettingOutboundBurst: "outbound burst",
	SettingSpoofing: "spoofing", SettingAddrs: "guest addresses",
	SettingLogicalPort: "OVN logical port",
}

// A SettingError is a port setting that the bridge's kind cannot carry.
type SettingError struct {
	Setting Setting
	// Flag is the flag, for SettingFlag.
	Flag Flag
	// Value is the value asked for, as its type prints it; "" for a
	// flag.
	Value string
	// Reason says which kind of bridge the setting needs, and what the
	// bridge is instead.
	Reason string
}

func (e *SettingError) Error() string {
	if e.Setting == SettingFlag {
		return "port flag " + e.Flag.String() + " " + e.Reason
	}
	return settingNames[e.Setting] + " " + e.Value + " " + e.Reason
}
