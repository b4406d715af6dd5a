package tap

import (
	"errors"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// PlanDown reads the tap called name and returns the changes that take it
// off its bridge and, if p.Promisc is set, turn off the promiscuous mode
// ifup turned on. A tap that is gone or on no bridge gives a plan without
// changes: QEMU may have removed it already, or a crashed QEMU never ran
// the down-script. A bridge that keeps a port whose device vanished (a
// switch's does) has it removed, so the port never outlives the guest;
// p.Bridge, the bridge ifup was given, says where to look. What bridges
// keep for a vanished tap beyond its port is removed too.
func PlanDown(c *link.Conn, name string, p Port) (*Plan, error) {
	l, err := getTap(c, name)
	gone := errors.Is(err, link.ErrNotFound)
	switch {
	case gone:
		l = &link.Link{Name: name}
	case err != nil:
		return nil, err
	}
	cur, err := p.Bridges.PortOf(c, l, bridge.Hint{Name: p.Bridge})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pl := &Plan{Tap: name, Gone: gone, link: l}
	if !gone && p.Promisc && l.Promisc() {
		pl.Changes = append(pl.Changes, promiscChange(false))
	}
	if gone {
		for _, s := range p.Bridges.Leftovers(c, name) {
			pl.Changes = append(pl.Changes, fromBridge(s))
		}
	}
	if cur == nil {
		return pl, nil
	}
	// The detach is the last step: nothing to read for its undo.
	leave, err := cur.Leave(c, l, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pl.Bridge = cur.Name()
	pl.Changes = append(pl.Changes, fromBridge(leave))
	return pl, nil
}
