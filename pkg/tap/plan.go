package tap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// An Op is one kind of change to a tap.
type Op int

// The changes, in the order ifup makes them: the MTU and MAC before the tap
// joins the bridge, so that the bridge's own MTU and MAC never follow the
// new port (as libvirt and qemu-bridge-helper order them).
const (
	OpMTU Op = iota
	OpMAC
	OpAttach
	OpPromisc
	OpUp
	OpPromiscOff
	OpDetach
)

// A Change is one step of a Plan, with the values it changes from and to.
type Change struct {
	Op       Op
	From, To string
}

func (c Change) String() string {
	switch c.Op {
	case OpMTU:
		return "mtu " + c.From + " -> " + c.To
	case OpMAC:
		return "mac " + c.From + " -> " + c.To
	case OpAttach:
		if c.From != "" {
			return "move from " + c.From + " to " + c.To
		}
		return "attach to " + c.To
	case OpPromisc:
		return "promisc on"
	case OpUp:
		return "up"
	case OpPromiscOff:
		return "promisc off"
	case OpDetach:
		return "detach from " + c.From
	}
	return "op " + strconv.Itoa(int(c.Op))
}

// state is what a plan reads from and writes to a tap.
type state struct {
	mtu     int
	mac     net.HardwareAddr
	master  *bridge.Bridge // nil for none
	promisc bool
	up      bool
}

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
	// Changes lists the steps, in order; empty when there is nothing to do.
	Changes []Change

	link       *link.Link
	have, want state

	// beforeStep, when set, runs before each change: tests use it to
	// inject faults between reading the state and changing it.
	beforeStep func(Change)
}

// ErrNotTap is returned (wrapped) for an interface that is not a tap.
// The helpers refuse to touch anything else: "qemu-ifup eth0" must never
// move the host's uplink into a bridge.
var ErrNotTap = errors.New("not a tap interface")

// ErrNoSuchInterface is returned (wrapped) when the tap does not exist.
var ErrNoSuchInterface = errors.New("no such interface")

// getTap looks up a tap by name.
func getTap(c *link.Conn, name string) (*link.Link, error) {
	l, err := c.ByName(name)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", name, ErrNoSuchInterface)
		}
		return nil, fmt.Errorf("%s: look up: %w", name, err)
	}
	if l.Tun == nil {
		return nil, fmt.Errorf("%s: %w (%s)", name, ErrNotTap, typeOf(l))
	}
	if !l.Tun.Tap {
		return nil, fmt.Errorf("%s: %w (a tun device, which carries no Ethernet frames)", name, ErrNotTap)
	}
	return l, nil
}

// typeOf names the type of an interface in messages, as ip -d link calls
// it: its link kind, "device" for a NIC without one.
func typeOf(l *link.Link) string {
	if l.Kind == "" {
		return "device"
	}
	return l.Kind
}

// stateOf reads the tap's state; master is its bridge.
func stateOf(l *link.Link, master *bridge.Bridge) state {
	return state{
		mtu:    l.MTU,
		mac:    l.MAC,
		master: master,
		// The flags a user set (dev->gflags for IFF_PROMISC), not the
		// promiscuity a bridge adds by itself.
		promisc: l.Promisc(),
		up:      l.Up(),
	}
}

// PlanUp reads the tap called name and the bridge p.Bridge and returns the
// changes that make the tap the port p describes. It changes nothing.
func PlanUp(c *link.Conn, name string, p Port) (*Plan, error) {
	l, err := getTap(c, name)
	if err != nil {
		return nil, err
	}
	br, err := bridge.Get(c, p.Bridge)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The tap's bridge: br itself when it is already a port of br, so that
	// comparing the two says whether to attach.
	var cur *bridge.Bridge
	switch l.MasterIndex {
	case 0:
	case br.Index:
		cur = br
	default:
		if cur, err = bridge.Of(c, l); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if !p.AllowMove {
			return nil, fmt.Errorf("%s: already a port of %s, not %s (AllowMove=yes in the config moves it)", name, cur.Name, p.Bridge)
		}
	}
	pl := &Plan{Tap: name, Bridge: p.Bridge, BridgeDown: !br.Up, link: l, have: stateOf(l, cur)}
	have := pl.have
	want := have
	want.mtu = p.MTU
	if want.mtu == 0 {
		want.mtu = br.MTU
	}
	if p.MAC == MACHigh {
		want.mac = highMAC(have.mac)
	}
	want.master = br
	want.promisc = have.promisc || p.Promisc
	want.up = true
	pl.want = want

	if have.mtu != want.mtu {
		pl.add(OpMTU, strconv.Itoa(have.mtu), strconv.Itoa(want.mtu))
	}
	if !bytes.Equal(have.mac, want.mac) {
		pl.add(OpMAC, have.mac.String(), want.mac.String())
	}
	if have.master != want.master {
		from := ""
		if have.master != nil {
			from = have.master.Name
		}
		pl.add(OpAttach, from, p.Bridge)
	}
	if have.promisc != want.promisc {
		pl.add(OpPromisc, "off", "on")
	}
	if !have.up {
		pl.add(OpUp, "down", "up")
	}
	return pl, nil
}

// PlanDown reads the tap called name and returns the changes that take it
// off its bridge and, if promisc is set, turn off the promiscuous mode ifup
// turned on. A tap that is gone or on no bridge gives a plan without
// changes: QEMU may have removed it already, or a crashed QEMU never ran
// the down-script.
func PlanDown(c *link.Conn, name string, promisc bool) (*Plan, error) {
	l, err := getTap(c, name)
	if errors.Is(err, ErrNoSuchInterface) {
		return &Plan{Tap: name, Gone: true}, nil
	}
	if err != nil {
		return nil, err
	}
	cur, err := bridge.Of(c, l)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pl := &Plan{Tap: name, link: l, have: stateOf(l, cur)}
	pl.want = pl.have
	if pl.have.promisc && promisc {
		pl.want.promisc = false
		pl.add(OpPromiscOff, "on", "off")
	}
	if cur != nil {
		pl.Bridge = cur.Name
		pl.want.master = nil
		pl.add(OpDetach, cur.Name, "")
	}
	return pl, nil
}

func (pl *Plan) add(op Op, from, to string) {
	pl.Changes = append(pl.Changes, Change{Op: op, From: from, To: to})
}
