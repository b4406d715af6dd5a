package tap

import (
	"bytes"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// An OtherBridgeError is a tap that is a port of another bridge than the
// one asked for, without Port.AllowMove.
type OtherBridgeError struct {
	Tap, Bridge, Want string
}

func (e *OtherBridgeError) Error() string {
	return e.Tap + ": already a port of " + e.Bridge + ", not " + e.Want
}

// PlanUp reads the tap called name and the bridge p.Bridge and returns the
// changes that make the tap the port p describes. It changes nothing.
func PlanUp(c *link.Conn, name string, p Port) (*Plan, error) {
	l, err := getTap(c, name)
	if err != nil {
		return nil, err
	}
	br, err := p.Bridges.Find(c, p.Bridge)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := br.Check(p.PortSettings); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Asking every kind costs a process: only a tap that may move is
	// looked for everywhere.
	cur, err := p.Bridges.PortOf(c, l, bridge.Hint{Bridge: br, Anywhere: p.AllowMove})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cur != nil && !br.Is(cur) && !p.AllowMove {
		return nil, &OtherBridgeError{Tap: name, Bridge: cur.Name(), Want: br.Name()}
	}
	mtu := p.MTU
	if mtu == 0 {
		if mtu, err = br.PortMTU(c, p.PortSettings); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	steps, err := br.Join(c, l, cur, mtu, p.PortSettings)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}

	pl := &Plan{Tap: name, Bridge: p.Bridge, BridgeDown: br.Down(), link: l}
	if l.MTU != mtu {
		pl.Changes = append(pl.Changes, mtuChange(l.MTU, mtu))
	}
	if mac := highMAC(l.MAC); p.MAC == MACHigh && !bytes.Equal(l.MAC, mac) {
		pl.Changes = append(pl.Changes, macChange(l.MAC, mac))
	}
	for _, s := range steps {
		pl.Changes = append(pl.Changes, fromBridge(s))
		if s.Warning != "" {
			pl.Warnings = append(pl.Warnings, s.Warning)
		}
	}
	// The flags a user set (dev->gflags for IFF_PROMISC), not the
	// promiscuity a bridge adds by itself.
	if p.Promisc && !l.Promisc() {
		pl.Changes = append(pl.Changes, promiscChange(true))
	}
	if !l.Up() {
		pl.Changes = append(pl.Changes, upChange())
	}
	return pl, nil
}

// MTU is the MTU PlanUp gives a tap that is to be the port p: p.MTU, else
// the one its bridge gives such a port (bridge.Bridge.PortMTU). It reads
// the bridge and changes nothing: a launcher tells the guest's NIC the
// MTU before the tap exists.
func MTU(c *link.Conn, p Port) (int, error) {
	if p.MTU != 0 {
		return p.MTU, nil
	}
	br, err := p.Bridges.Find(c, p.Bridge)
	if err != nil {
		return 0, err
	}
	if err := br.Check(p.PortSettings); err != nil {
		return 0, err
	}
	return br.PortMTU(c, p.PortSettings)
}
