package bridge

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// Linux is a bridge of the kernel's own (ip link add type bridge), driven
// over netlink. Its ports have flags and static forwarding entries; it
// carries no VLANs.
type Linux struct {
	name  string
	index int // of the bridge's own interface
	mtu   int
	up    bool // IFF_UP as set by the user
}

var _ Bridge = (*Linux)(nil)

// linuxKind finds Linux bridges: the kernel alone knows them.
type linuxKind struct{}

func (linuxKind) named(_ *link.Conn, l *link.Link) (Bridge, error) {
	if l.Kind != "bridge" {
		return nil, nil
	}
	return linuxOf(l), nil
}

func (linuxKind) holding(_ *link.Conn, _, master *link.Link, _ Hint) (Bridge, error) {
	if master == nil || master.Kind != "bridge" {
		return nil, nil
	}
	return linuxOf(master), nil
}

func linuxOf(l *link.Link) *Linux {
	return &Linux{name: l.Name, index: l.Index, mtu: l.MTU, up: l.Up()}
}

// Name is the bridge's name.
func (b *Linux) Name() string { return b.name }

// String is the bridge's name.
func (b *Linux) String() string { return b.name }

// Kind is "linux-bridge".
func (b *Linux) Kind() string { return "linux-bridge" }

// PortMTU is the MTU of the bridge's own interface.
func (b *Linux) PortMTU(*link.Conn, PortSettings) (int, error) { return b.mtu, nil }

// Down reports whether the bridge is set down.
func (b *Linux) Down() bool { return !b.up }

// Is reports whether o is this bridge: the same name and index.
func (b *Linux) Is(o Bridge) bool {
	ob, ok := o.(*Linux)
	return ok && ob.name == b.name && ob.index == b.index
}

// Has reports whether b is port's kernel master.
func (b *Linux) Has(port *link.Link) bool { return port.MasterIndex == b.index }

// Check refuses VLANs, since VLANs on Linux bridges (vlan_filtering) are
// not implemented, OVN logical ports, which are Open vSwitch ports, and
// limits and guards that lack a part.
func (b *Linux) Check(s PortSettings) error {
	if err := checkGuard(s); err != nil {
		return err
	}
	reason := "needs an Open vSwitch bridge and " + b.name + " is a Linux bridge: VLANs on Linux bridges (vlan_filtering) are not implemented"
	switch {
	case s.LogicalPort != "":
		return &SettingError{Setting: SettingLogicalPort, Value: s.LogicalPort,
			Reason: "needs OVN's integration bridge, an Open vSwitch bridge (br-int), and " + b.name + " is a Linux bridge"}
	case s.VLAN != 0:
		return &SettingError{Setting: SettingVLAN, Value: strconv.Itoa(s.VLAN), Reason: reason}
	case !s.Trunks.IsEmpty():
		return &SettingError{Setting: SettingTrunks, Value: s.Trunks.String(), Reason: reason}
	}
	return nil
}

// Join gives port the rules on the frames from the guest and the limit
// on the traffic to it that s asks for, before the port carries any
// frame (and removes the rules of ports that no longer exist); attaches
// port (moving it from another Linux bridge in one step, or after from's
// own detach from a bridge of another kind), then sets the flags s gives
// that it lacks and, for a guest MAC on a port that does not learn, adds
// the static forwarding entry.
func (b *Linux) Join(c *link.Conn, port *link.Link, from Bridge, _ int, s PortSettings) ([]Step, error) {
	same := from != nil && b.Is(from)
	steps, err := guardSteps(c, port, s)
	if err != nil {
		return nil, err
	}
	shape, err := shapeSteps(c, port, s.Inbound)
	if err != nil {
		return nil, err
	}
	steps = append(steps, shape...)
	// A tap that is down and on no bridge is as QEMU made it, without an
	// ifb device: one is looked for only when asked for (ifdown removes
	// it, and a new tap has none).
	if fresh := from == nil && !port.Up(); !fresh || s.Outbound.Set() {
		shape, err := outShapeSteps(c, port, s.Outbound)
		if err != nil {
			return nil, err
		}
		steps = append(steps, shape...)
	}
	switch prev, ok := from.(*Linux); {
	case same:
	case ok:
		steps = append(steps, b.attach(prev))
	case from != nil:
		leave, err := from.Leave(c, port, false)
		if err != nil {
			return nil, err
		}
		steps = append(steps, leave, b.attach(nil))
	default:
		steps = append(steps, b.attach(nil))
	}
	// A port that joins starts with the kernel's defaults.
	have := link.BridgePort{Learning: true, UnicastFlood: true}
	if same && port.BridgePort != nil {
		have = *port.BridgePort
	}
	for _, fc := range s.Flags.Changes(&have) {
		steps = append(steps, flagStep(fc, fc.Flag.of(&have)))
	}
	if s.GuestMAC == "" || s.Flags.apply(have).Learning {
		return steps, nil
	}
	mac, err := net.ParseMAC(s.GuestMAC)
	if err != nil {
		return nil, fmt.Errorf("guest MAC: %w", err)
	}
	if same {
		ok, err := c.StaticFDB(port, mac)
		switch {
		case err != nil:
			return nil, fmt.Errorf("read fdb entry %s on %s: %w", mac, port.Name, err)
		case ok:
			return steps, nil
		}
	}
	return append(steps, fdbStep(mac)), nil
}

// attach is the step that makes a port b's, moving it from prev (nil
// for none).
func (b *Linux) attach(prev *Linux) Step {
	st := Step{
		Action: ActAttach,
		Desc:   "attach to " + b.String(),
		Apply:  func(c *link.Conn, port *link.Link) error { return b.Attach(c, port) },
		Undo:   func(c *link.Conn, port *link.Link) error { return b.Detach(c, port) },
		Verify: b.Verify,
	}
	if prev != nil {
		st.Desc = "move from " + prev.String() + " to " + b.String()
		st.Undo = func(c *link.Conn, port *link.Link) error { return prev.Attach(c, port) }
	}
	return st
}

// Leave is the step that detaches port and removes its rules and its
// limit; its undo attaches it again and, unless last, puts them back.
func (b *Linux) Leave(c *link.Conn, port *link.Link, last bool) (Step, error) {
	st := Step{
		Action: ActDetach,
		Desc:   "detach from " + b.String(),
		Apply:  b.Detach,
		Undo:   b.Attach,
	}
	guard, err := leaveGuard(c, port, last)
	if err != nil {
		return Step{}, err
	}
	shape, err := leaveShape(c, port, last)
	if err != nil {
		return Step{}, fmt.Errorf("read the qdisc of %s: %w", port.Name, err)
	}
	outShape, err := leaveOutShape(c, port, last)
	if err != nil {
		return Step{}, err
	}
	var parts []Step
	for _, p := range []*Step{guard, shape, outShape} {
		if p != nil {
			st.Desc += ", " + p.Desc
			parts = append(parts, *p)
		}
	}
	if len(parts) == 0 {
		return st, nil
	}
	detach := st
	st.Apply = func(c *link.Conn, port *link.Link) error {
		if err := detach.Apply(c, port); err != nil {
			return err
		}
		for i, p := range parts {
			if err := p.Apply(c, port); err != nil {
				for j := i - 1; j >= 0; j-- {
					if parts[j].Undo != nil {
						_ = parts[j].Undo(c, port)
					}
				}
				_ = detach.Undo(c, port)
				return err
			}
		}
		return nil
	}
	st.Undo = func(c *link.Conn, port *link.Link) error {
		for _, p := range parts {
			if p.Undo != nil {
				if err := p.Undo(c, port); err != nil {
					return err
				}
			}
		}
		return detach.Undo(c, port)
	}
	return st, nil
}

// Attach makes port a port of b; a port of another Linux bridge moves to
// b. A bridge that vanished since it was found is named as such in the
// error (the kernel says only EINVAL). Verify afterwards: the attach goes
// by index, which cannot tell a bridge renamed meanwhile.
//
// A bridge whose MAC may still be the kernel's choice gets its current
// MAC set explicitly first, so that it never takes a port's (see pinMAC).
//
// Equivalent to: ip link set dev $b address $(its address);
// ip link set dev $port master $b
func (b *Linux) Attach(c *link.Conn, port *link.Link) error {
	if err := b.pinMAC(c); err != nil {
		if !b.vanished(c) {
			err = fmt.Errorf("fix the bridge's MAC: %w", err)
		} else {
			err = fmt.Errorf("bridge %s disappeared", b.name)
		}
		return fmt.Errorf("attach %s to %s: %w", port.Name, b.name, err)
	}
	if err := c.SetMaster(port, b.index); err != nil {
		if b.vanished(c) {
			err = fmt.Errorf("bridge %s disappeared", b.name)
		}
		return fmt.Errorf("attach %s to %s: %w", port.Name, b.name, err)
	}
	return nil
}

// vanished reports whether b's interface is gone, which explains a failed
// change of it (the kernel says only EINVAL or ENODEV).
func (b *Linux) vanished(c *link.Conn) bool {
	_, err := c.ByIndex(b.index)
	return errors.Is(err, link.ErrNotFound)
}

// Detach takes port off b.
//
// Equivalent to: ip link set dev $port nomaster
func (b *Linux) Detach(c *link.Conn, port *link.Link) error {
	if err := c.SetMaster(port, 0); err != nil {
		return fmt.Errorf("detach %s from %s: %w", port.Name, b.name, err)
	}
	return nil
}

// Verify checks, once port has joined b, that b is still the bridge that
// was found, by name. Whether it is up does not matter: a port may join a
// bridge that comes up later.
func (b *Linux) Verify(c *link.Conn, port *link.Link) error {
	l, err := c.ByIndex(b.index)
	switch {
	case errors.Is(err, link.ErrNotFound):
		err = fmt.Errorf("bridge %s disappeared", b.name)
	case err != nil:
		err = fmt.Errorf("look up bridge: %w", err)
	case l.Name != b.name:
		err = fmt.Errorf("bridge %s was renamed to %s", b.name, l.Name)
	}
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", port.Name, b.name, err)
	}
	return nil
}

// flagStep is the step that sets one flag, whose undo gives it back the
// value had.
func flagStep(fc FlagChange, had bool) Step {
	return Step{
		Action: ActFlag,
		Desc:   fc.String(),
		Apply:  func(c *link.Conn, port *link.Link) error { return setFlag(c, port, fc) },
		Undo: func(c *link.Conn, port *link.Link) error {
			return setFlag(c, port, FlagChange{Flag: fc.Flag, On: had})
		},
	}
}

// fdbStep is the step that adds the static forwarding entry for mac.
func fdbStep(mac net.HardwareAddr) Step {
	return Step{
		Action: ActFDB,
		Desc:   "static fdb entry " + mac.String(),
		Apply:  func(c *link.Conn, port *link.Link) error { return addStaticFDB(c, port, mac) },
		Undo:   func(c *link.Conn, port *link.Link) error { return delFDB(c, port, mac) },
	}
}
