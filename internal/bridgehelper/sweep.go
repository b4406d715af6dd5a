package bridgehelper

import (
	"errors"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// Persistent taps. Whoever holds a tap's descriptor may make the tap
// persistent (TUNSETPERSIST: the kernel asks no privilege of the holder),
// and the tap then outlives the descriptor, on its bridge: a user allowed
// a bridge could fill its ports (1024 at most) one helper call at a time.
// The kernel offers no way to forbid it, so the helper cleans up instead:
// it marks each tap it makes with an alias (Marker), which the holder
// cannot change (that takes CAP_NET_ADMIN), and before it makes a tap it
// removes its own taps that persist with no process holding them. Taps it
// did not make are never touched: an administrator's persistent taps
// (ip tuntap add) stay.

// Marker is the alias (IFLA_IFALIAS) of the taps the helper makes.
const Marker = Name

// orphan reports whether l is a tap the helper made that only its
// persistence keeps: no process holds it.
func orphan(l *link.Link) bool {
	return l.Alias == Marker && l.Tun != nil && l.Tun.Persist && !l.Tun.Held()
}

// sweep removes the helper's orphaned taps and returns their names. A tap
// that cannot be removed is an error, after the others are removed.
func sweep(c *link.Conn) ([]string, error) {
	taps, err := c.List(link.Filter{Kind: "tun"})
	if err != nil {
		return nil, fmt.Errorf("list taps: %w", err)
	}
	var gone []string
	var first error
	for _, l := range taps {
		if !orphan(l) {
			continue
		}
		err := c.Delete(l)
		if errors.Is(err, link.ErrNotFound) {
			continue // another helper's sweep was first
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("remove %s, a persistent tap nobody holds: %w", l.Name, err)
			}
			continue
		}
		gone = append(gone, orphanName(c, l))
	}
	return gone, first
}

// orphanName names a removed tap, with its owner and its bridge, for the
// log.
func orphanName(c *link.Conn, l *link.Link) string {
	s := fmt.Sprintf("%s (owner uid %d", l.Name, l.Tun.Owner)
	if l.MasterIndex != 0 {
		if m, err := c.ByIndex(l.MasterIndex); err == nil {
			s += ", port of " + m.Name
		}
	}
	return s + ")"
}
