package tap

import (
	"errors"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// Apply makes the plan's changes in order, calling done after each one.
// If a change fails, Apply undoes the changes already made, newest first,
// so that no half-configured tap is left behind, and returns the error.
func (pl *Plan) Apply(conn *link.Conn, done func(Change)) error {
	for i, c := range pl.Changes {
		if pl.beforeStep != nil {
			pl.beforeStep(c)
		}
		err := pl.do(conn, c, pl.want, pl.have, false)
		applied := pl.Changes[:i]
		if err != nil && pl.ovsChange(c) {
			// ovs-vsctl may have committed a change it then timed
			// out waiting for ovs-vswitchd to apply: undo it too
			// (removing or resetting a port is harmless if not).
			applied = pl.Changes[:i+1]
		}
		if err == nil && c.Op == OpAttach {
			applied = pl.Changes[:i+1]
			err = pl.want.master.Verify(conn, pl.link)
		}
		if err != nil {
			if uerr := pl.undo(conn, applied); uerr != nil {
				return fmt.Errorf("%w; undoing earlier changes failed: %v", err, uerr)
			}
			if len(applied) > 0 {
				return fmt.Errorf("%w (earlier changes undone)", err)
			}
			return err
		}
		if done != nil {
			done(c)
		}
	}
	return nil
}

// undo reverts applied changes, newest first, and returns the first error.
// A tap that vanished meanwhile has nothing left to undo.
func (pl *Plan) undo(conn *link.Conn, applied []Change) error {
	var first error
	for i := len(applied) - 1; i >= 0; i-- {
		err := pl.do(conn, applied[i], pl.have, pl.want, true)
		if errors.Is(err, link.ErrNotFound) {
			return nil
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// do sets the attribute c changes to its value in s; from is the state it
// changes from, which names the bridge a detach leaves. undo is set when
// do reverts an applied change (s is then the state before the plan).
func (pl *Plan) do(conn *link.Conn, c Change, s, from state, undo bool) error {
	tap := pl.Tap
	switch c.Op {
	case OpMTU:
		if err := conn.SetMTU(pl.link, s.mtu); err != nil {
			return fmt.Errorf("set mtu of %s to %d: %w", tap, s.mtu, err)
		}
	case OpMAC:
		if err := conn.SetMAC(pl.link, s.mac); err != nil {
			return fmt.Errorf("set mac of %s to %s: %w", tap, s.mac, err)
		}
	case OpDetach:
		if !undo {
			return pl.leave(conn, from.master, false)
		}
		return pl.join(conn, s.master, s.ovs, nil, true)
	case OpAttach:
		switch {
		case !undo && pl.crossKind:
			// The plan's OpDetach already took the tap off its bridge.
			return pl.join(conn, s.master, s.ovs, nil, false)
		case !undo:
			return pl.join(conn, s.master, s.ovs, from.master, false)
		case s.master == nil || pl.crossKind:
			return pl.leave(conn, from.master, true)
		}
		return pl.join(conn, s.master, s.ovs, from.master, true)
	case OpOVSSet:
		return pl.join(conn, s.master, s.ovs, nil, undo)
	case OpFlag:
		fc := bridge.FlagChange{Flag: c.Flag.Flag, On: flagOf(s.flags, c.Flag.Flag)}
		return bridge.SetFlag(conn, pl.link, fc)
	case OpFDB:
		if s.fdb {
			return bridge.AddStaticFDB(conn, pl.link, pl.guestMAC)
		}
		return bridge.DelFDB(conn, pl.link, pl.guestMAC)
	case OpPromisc, OpPromiscOff:
		if err := conn.SetPromisc(pl.link, s.promisc); err != nil {
			return fmt.Errorf("set promisc of %s %s: %w", tap, onOff(s.promisc), err)
		}
	case OpUp:
		if err := conn.SetUp(pl.link, s.up); err != nil {
			return fmt.Errorf("set %s %s: %w", tap, upDown(s.up), err)
		}
	}
	return nil
}

// ovsChange reports whether c changes an Open vSwitch port.
func (pl *Plan) ovsChange(c Change) bool {
	switch c.Op {
	case OpAttach, OpOVSSet:
		return pl.want.master != nil && pl.want.master.Kind == bridge.OpenVSwitch
	}
	return false
}

// join makes the tap a port of b, with the Open vSwitch settings op for an
// OVS bridge; leaving is the bridge it moves from, nil for none. An undo
// does not wait for ovs-vswitchd, which may be why the plan failed: the
// database holds the port as it was all the same.
func (pl *Plan) join(conn *link.Conn, b *bridge.Bridge, op *bridge.OVSPort, leaving *bridge.Bridge, undo bool) error {
	if b.Kind != bridge.OpenVSwitch {
		return b.Attach(conn, pl.link)
	}
	move := leaving != nil && leaving.Kind == bridge.OpenVSwitch && leaving.Name != b.Name
	return b.Switch.WithNoWait(undo).AddPort(*op, move)
}

// leave takes the tap off b.
func (pl *Plan) leave(conn *link.Conn, b *bridge.Bridge, undo bool) error {
	if b.Kind != bridge.OpenVSwitch {
		return b.Detach(conn, pl.link)
	}
	return b.Switch.WithNoWait(undo).DelPort(pl.Tap)
}

func flagOf(p link.BridgePort, f bridge.Flag) bool {
	switch f {
	case bridge.FlagIsolated:
		return p.Isolated
	case bridge.FlagLearning:
		return p.Learning
	}
	return p.UnicastFlood
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}
