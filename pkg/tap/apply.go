package tap

import (
	"errors"
	"fmt"
	"net"

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
		err := c.step.Apply(conn, pl.link)
		applied := pl.Changes[:i]
		if err != nil && c.step.Uncertain {
			applied = pl.Changes[:i+1]
		}
		if err == nil && c.step.Verify != nil {
			applied = pl.Changes[:i+1]
			err = c.step.Verify(conn, pl.link)
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
		u := applied[i].step.Undo
		if u == nil {
			continue
		}
		err := u(conn, pl.link)
		if errors.Is(err, link.ErrNotFound) {
			return nil
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func setMTU(c *link.Conn, l *link.Link, mtu int) error {
	if err := c.SetMTU(l, mtu); err != nil {
		return fmt.Errorf("set mtu of %s to %d: %w", l.Name, mtu, err)
	}
	return nil
}

func setMAC(c *link.Conn, l *link.Link, mac net.HardwareAddr) error {
	if err := c.SetMAC(l, mac); err != nil {
		return fmt.Errorf("set mac of %s to %s: %w", l.Name, mac, err)
	}
	return nil
}

func setPromisc(c *link.Conn, l *link.Link, on bool) error {
	if err := c.SetPromisc(l, on); err != nil {
		return fmt.Errorf("set promisc of %s %s: %w", l.Name, onOff(on), err)
	}
	return nil
}

func setUp(c *link.Conn, l *link.Link, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if err := c.SetUp(l, up); err != nil {
		return fmt.Errorf("set %s %s: %w", l.Name, state, err)
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
