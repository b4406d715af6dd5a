package tap

import (
	"errors"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A Plan is what ifup or ifdown will change on one tap, computed from the
// tap's state as read over netlink.
type Plan struct {
	// Tap and Bridge name the tap and the bridge concerned; Bridge is
	// empty for an ifdown plan on a tap that is on no bridge.
	Tap    string
	Bridge string
	// Gone is set by PlanDown when the tap no longer exists.
	Gone bool
	// BridgeDown is set by PlanUp when the bridge exists but is down: the
	// tap is attached anyway, as the classic script, libvirt and
	// qemu-bridge-helper do (the bridge may come up later in boot), and
	// the caller warns.
	BridgeDown bool
	// Warnings are what the bridge's steps ask the caller to warn of
	// (Step.Warning): a setting the host can only partly carry out.
	Warnings []string
	// Changes lists the steps, in order; empty when there is nothing to do.
	Changes []Change

	// link is the tap as read, which the changes act on.
	link *link.Link
	// beforeStep, when set, runs before each change: tests use it to
	// inject faults between reading the state and changing it.
	beforeStep func(Change)
}

// ErrNotTap is returned (wrapped) for an interface that is not a tap.
// The helpers refuse to touch anything else: "qemu-ifup eth0" must never
// move the host's uplink into a bridge. A tap that does not exist is an
// error matching link.ErrNotFound.
var ErrNotTap = errors.New("not a tap interface")

// getTap looks up a tap by name.
func getTap(c *link.Conn, name string) (*link.Link, error) {
	l, err := c.ByName(name)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", name, link.ErrNotFound)
		}
		return nil, fmt.Errorf("%s: look up: %w", name, err)
	}
	if l.Tun == nil {
		return nil, fmt.Errorf("%s: %w (%s)", name, ErrNotTap, l.Type())
	}
	if !l.Tun.Tap {
		return nil, fmt.Errorf("%s: %w (a tun device, which carries no Ethernet frames)", name, ErrNotTap)
	}
	return l, nil
}
