package tap

import (
	"net"
	"strconv"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// An Op is one kind of change to a tap.
type Op int

// The changes. ifup makes them in this order: the MTU and MAC before the
// tap joins the bridge, so that the bridge's own MTU and MAC never follow
// the new port (as libvirt and qemu-bridge-helper order them), then the
// bridge's steps (OpDetach to OpShape, in the order the bridge's kind
// gives), then promiscuous mode and up.
const (
	OpMTU Op = iota
	OpMAC
	OpAttach
	OpPromisc
	OpUp
	OpPromiscOff
	OpDetach
	// OpConfigure reconfigures a port already on its bridge.
	OpConfigure
	// OpFlag sets one flag of the port.
	OpFlag
	// OpFDB adds the static forwarding entry for the guest's MAC.
	OpFDB
	// OpGuard sets, changes or removes the rules on the frames from the
	// guest.
	OpGuard
	// OpShape sets, changes or removes the limit on the traffic to the
	// guest.
	OpShape
	// OpWait waits until the switch has made the port live.
	OpWait
)

var opNames = [...]string{
	OpMTU: "mtu", OpMAC: "mac", OpAttach: "attach", OpPromisc: "promisc on", OpUp: "up",
	OpPromiscOff: "promisc off", OpDetach: "detach", OpConfigure: "configure", OpFlag: "flag", OpFDB: "fdb",
	OpGuard: "guard", OpShape: "shape",
	OpWait: "wait",
}

func (o Op) String() string {
	if o >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "op " + strconv.Itoa(int(o))
}

// opOf is the Op of a bridge step.
func opOf(a bridge.Action) Op {
	switch a {
	case bridge.ActAttach:
		return OpAttach
	case bridge.ActDetach:
		return OpDetach
	case bridge.ActConfigure:
		return OpConfigure
	case bridge.ActFlag:
		return OpFlag
	case bridge.ActGuard:
		return OpGuard
	case bridge.ActShape:
		return OpShape
	case bridge.ActWait:
		return OpWait
	}
	return OpFDB
}

// A Change is one step of a Plan: what it does, and how to make, check
// and undo it on the plan's tap.
type Change struct {
	Op Op
	// step makes the change: a bridge's step, or one of the tap's own
	// (whose Action says nothing: Op does).
	step bridge.Step
}

// String says what the change does: "mtu 1500 -> 9000", "attach to virbr0".
func (c Change) String() string { return c.step.Desc }

// fromBridge is the change a bridge step makes.
func fromBridge(s bridge.Step) Change { return Change{Op: opOf(s.Action), step: s} }

// The tap's own changes; each undo sets back the value read.

func mtuChange(from, to int) Change {
	return Change{Op: OpMTU, step: bridge.Step{
		Desc:  "mtu " + strconv.Itoa(from) + " -> " + strconv.Itoa(to),
		Apply: func(c *link.Conn, l *link.Link) error { return setMTU(c, l, to) },
		Undo:  func(c *link.Conn, l *link.Link) error { return setMTU(c, l, from) },
	}}
}

func macChange(from, to net.HardwareAddr) Change {
	return Change{Op: OpMAC, step: bridge.Step{
		Desc:  "mac " + from.String() + " -> " + to.String(),
		Apply: func(c *link.Conn, l *link.Link) error { return setMAC(c, l, to) },
		Undo:  func(c *link.Conn, l *link.Link) error { return setMAC(c, l, from) },
	}}
}

func promiscChange(on bool) Change {
	op := OpPromisc
	if !on {
		op = OpPromiscOff
	}
	return Change{Op: op, step: bridge.Step{
		Desc:  op.String(),
		Apply: func(c *link.Conn, l *link.Link) error { return setPromisc(c, l, on) },
		Undo:  func(c *link.Conn, l *link.Link) error { return setPromisc(c, l, !on) },
	}}
}

func upChange() Change {
	return Change{Op: OpUp, step: bridge.Step{
		Desc:  "up",
		Apply: func(c *link.Conn, l *link.Link) error { return setUp(c, l, true) },
		Undo:  func(c *link.Conn, l *link.Link) error { return setUp(c, l, false) },
	}}
}
