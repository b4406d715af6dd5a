package tap

import (
	"errors"
	"fmt"

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
		err := pl.do(conn, c, pl.want, pl.have)
		applied := pl.Changes[:i]
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
		err := pl.do(conn, applied[i], pl.have, pl.want)
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
// changes from, which names the bridge a detach leaves.
func (pl *Plan) do(conn *link.Conn, c Change, s, from state) error {
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
	case OpAttach, OpDetach:
		if s.master == nil {
			return from.master.Detach(conn, pl.link)
		}
		return s.master.Attach(conn, pl.link)
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
