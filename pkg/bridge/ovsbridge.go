package bridge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// OVSBridge is a bridge of Open vSwitch, driven through ovs-vsctl (see
// OVS). Its ports have VLANs, the tap's MTU as mtu_request and
// external-ids naming the guest and, for an OVN logical port, the port's
// identity (ovn.go); they have no flags.
type OVSBridge struct {
	name string
	mtu  int // of the bridge's own interface; 0 when not looked up
	sw   *OVS
	// chassis is this host as OVN sees it, read once by ovn.
	chassis *chassisRead
}

var _ Bridge = (*OVSBridge)(nil)

// ovsKind finds the bridges of one Open vSwitch; nil sw finds none.
type ovsKind struct{ sw *OVS }

// named asks Open vSwitch only about an interface of a kind an OVS
// bridge's own interface has ("openvswitch" with the kernel datapath,
// "tun" with the userspace one), so that finding a Linux bridge, or
// refusing a veth, never runs ovs-vsctl.
func (k ovsKind) named(_ *link.Conn, l *link.Link) (Bridge, error) {
	if k.sw == nil || !mayBeOVS(l) {
		return nil, nil
	}
	ok, err := k.sw.IsOVSBridge(l.Name)
	switch {
	case err != nil && l.Kind == "tun" && errors.Is(err, ErrOVSUnavailable):
		// A tap is an OVS bridge only for a running userspace datapath;
		// most are not bridges at all: say both, OVS's failure first.
		return nil, fmt.Errorf("%w; without it, %w", err, notBridge(l))
	case err != nil:
		return nil, err
	case !ok:
		return nil, nil
	}
	return &OVSBridge{name: l.Name, mtu: l.MTU, sw: k.sw}, nil
}

// holding asks Open vSwitch which bridge has port. The kernel cannot
// tell: a kernel datapath's ports all have ovs-system as their master, a
// userspace datapath's have none. A port without master is asked about
// only when the hint may be an OVS bridge, or for any bridge at all,
// since asking costs a process.
func (k ovsKind) holding(c *link.Conn, port, master *link.Link, h Hint) (Bridge, error) {
	ofSwitch := master != nil && master.Kind == "openvswitch"
	if ofSwitch && h.Listing {
		if k.sw != nil {
			if b, err := k.bridgeOf(port.Name); err == nil && b != nil {
				return b, nil
			}
		}
		return &OVSBridge{sw: k.sw}, nil
	}
	if k.sw == nil {
		return nil, nil
	}
	switch _, isOVS := h.Bridge.(*OVSBridge); {
	case ofSwitch:
		return k.bridgeOf(port.Name)
	case master != nil:
		return nil, nil
	case isOVS || h.Bridge == nil && h.Name != "" && mayBeOVSNamed(c, h.Name):
		return k.bridgeOf(port.Name)
	case h.Anywhere:
		b, err := k.bridgeOf(port.Name)
		if errors.Is(err, ErrOVSUnavailable) {
			return nil, nil
		}
		return b, err
	}
	return nil, nil
}

// bridgeOf is the OVS bridge that has the interface called port, nil for
// none.
//
// Equivalent to: ovs-vsctl iface-to-br $port
func (k ovsKind) bridgeOf(port string) (Bridge, error) {
	name, err := k.sw.PortBridge(port)
	if err != nil || name == "" {
		return nil, err
	}
	return &OVSBridge{name: name, sw: k.sw}, nil
}

// mayBeOVS reports whether l could be an OVS bridge's own interface.
func mayBeOVS(l *link.Link) bool { return l.Kind == "openvswitch" || l.Kind == "tun" }

func mayBeOVSNamed(c *link.Conn, name string) bool {
	l, err := c.ByName(name)
	return err == nil && mayBeOVS(l)
}

// Name is the bridge's name.
func (b *OVSBridge) Name() string { return b.name }

// String says that the bridge is Open vSwitch's.
func (b *OVSBridge) String() string { return "Open vSwitch bridge " + b.name }

// Kind is "openvswitch".
func (b *OVSBridge) Kind() string { return "openvswitch" }

// PortMTU is the MTU of the bridge's own interface (0 when unknown), or,
// for an OVN logical port on a chassis, the MTU its tunnels leave.
func (b *OVSBridge) PortMTU(c *link.Conn, s PortSettings) (int, error) {
	if s.LogicalPort == "" {
		return b.mtu, nil
	}
	ch, err := b.ovn()
	if err != nil || ch == nil {
		return b.mtu, err
	}
	m, err := ch.OverlayMTU(c)
	if err != nil {
		return 0, fmt.Errorf("MTU of OVN logical port %s: %w", s.LogicalPort, err)
	}
	return m.MTU, nil
}

// Down is false: a switch's bridge takes its ports whatever the state
// of its own interface.
func (b *OVSBridge) Down() bool { return false }

// Is reports whether o is the OVS bridge of the same name.
func (b *OVSBridge) Is(o Bridge) bool {
	ob, ok := o.(*OVSBridge)
	return ok && ob.name == b.name
}

// Has is false: only the switch knows its ports.
func (b *OVSBridge) Has(*link.Link) bool { return false }

// Check refuses port flags, which are a Linux bridge's, and guards
// against spoofing, which are OVN's port security on a switch; and
// limits (see checkLimits).
func (b *OVSBridge) Check(s PortSettings) error {
	if err := checkGuard(s); err != nil {
		return err
	}
	if s.DenySpoofing {
		return &SettingError{Setting: SettingSpoofing, Value: "deny",
			Reason: "applies to ports of Linux bridges; on Open vSwitch bridge " + b.name + ", OVN's port security (port_security on the logical switch port) guards against spoofing"}
	}
	if err := b.checkLimits(s); err != nil {
		return err
	}
	for f := range numFlags {
		if _, given := s.Flags.Get(f); given {
			return &SettingError{Setting: SettingFlag, Flag: f,
				Reason: "applies to ports of Linux bridges; " + b.name + " is an Open vSwitch bridge"}
		}
	}
	return nil
}

// Join adds port with its settings in one transaction (moving it from
// another OVS bridge in the same one, or after from's own detach from a
// bridge of another kind), or, for a port of b already, reconfigures
// what differs from s.
func (b *OVSBridge) Join(c *link.Conn, port *link.Link, from Bridge, mtu int, s PortSettings) ([]Step, error) {
	steps, err := b.join(c, port, from, mtu, s)
	if err != nil || s.LogicalPort == "" {
		return steps, err
	}
	return b.logicalPort(steps, s)
}

// join is Join without a logical port's wait.
func (b *OVSBridge) join(c *link.Conn, port *link.Link, from Bridge, mtu int, s PortSettings) ([]Step, error) {
	want := b.port(port.Name, mtu, s)
	prev, ok := from.(*OVSBridge)
	switch {
	case ok:
		have, err := prev.read(port.Name)
		if err != nil {
			return nil, err
		}
		if !b.Is(prev) {
			return []Step{b.attach(want, prev, have)}, nil
		}
		if sameOVS(have, want) {
			return nil, nil
		}
		hs, ws := describeOVS(have, want)
		return []Step{{
			Action:    ActConfigure,
			Desc:      "set Open vSwitch port: " + hs + " -> " + ws,
			Apply:     func(*link.Conn, *link.Link) error { return b.sw.AddPort(want, false) },
			Undo:      func(*link.Conn, *link.Link) error { return b.sw.WithNoWait(true).AddPort(*have, false) },
			Uncertain: true,
		}}, nil
	case from != nil:
		leave, err := from.Leave(c, port, false)
		if err != nil {
			return nil, err
		}
		return []Step{leave, b.attach(want, nil, nil)}, nil
	}
	return []Step{b.attach(want, nil, nil)}, nil
}

// attach is the step that adds the port want, moving it from prev, where
// it is as have (nil for none). ovs-vsctl may have committed a change it
// then timed out waiting for ovs-vswitchd to apply: the step is
// Uncertain, and its undo, which does not wait for ovs-vswitchd (it may
// be why the step failed), harmless if nothing changed.
func (b *OVSBridge) attach(want OVSPort, prev *OVSBridge, have *OVSPort) Step {
	st := Step{
		Action:    ActAttach,
		Desc:      "attach to " + attachTo(b, want),
		Apply:     func(*link.Conn, *link.Link) error { return b.sw.AddPort(want, prev != nil) },
		Undo:      func(*link.Conn, *link.Link) error { return b.sw.WithNoWait(true).DelPort(want.Name) },
		Verify:    b.Verify,
		Uncertain: true,
	}
	if prev != nil {
		st.Desc = "move from " + prev.String() + " to " + attachTo(b, want)
		st.Undo = func(*link.Conn, *link.Link) error { return prev.sw.WithNoWait(true).AddPort(*have, true) }
	}
	return st
}

// Leave is the step that removes port from the switch. Unless last, it
// reads the port's settings first, for its undo to put back.
func (b *OVSBridge) Leave(_ *link.Conn, port *link.Link, last bool) (Step, error) {
	st := Step{
		Action: ActDetach,
		Desc:   "detach from " + b.String(),
		Apply:  func(*link.Conn, *link.Link) error { return b.sw.DelPort(port.Name) },
	}
	if last {
		return st, nil
	}
	have, err := b.read(port.Name)
	if err != nil {
		return Step{}, err
	}
	st.Undo = func(*link.Conn, *link.Link) error { return b.sw.WithNoWait(true).AddPort(*have, false) }
	return st, nil
}

// Verify checks that ovs-vswitchd opened the port (see OVS.Applied).
func (b *OVSBridge) Verify(_ *link.Conn, port *link.Link) error {
	if err := b.sw.Applied(port.Name); err != nil {
		return fmt.Errorf("attach %s to %s: %w", port.Name, b.name, err)
	}
	return nil
}

// ovsExternalIDs are the keys of external-ids the helpers set.
var ovsExternalIDs = []string{"attached-mac", "iface-id", "iface-status", "vm-name", "vm-uuid"}

// read reads the settings of the port called name, on b; the keys of
// ovsExternalIDs it does not have are to remove, for an undo to put it
// back as it was.
func (b *OVSBridge) read(name string) (*OVSPort, error) {
	p, err := b.sw.PortOn(b.name, name, ovsExternalIDs...)
	if err != nil {
		return nil, err
	}
	p.RemoveExternalIDs = unsetIDs(p.ExternalIDs)
	return p, nil
}

// unsetIDs are the keys of ovsExternalIDs that ids does not have.
func unsetIDs(ids map[string]string) []string {
	var out []string
	for _, k := range ovsExternalIDs {
		if _, ok := ids[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// port is the OVS port s asks for, with the tap's MTU as mtu_request so
// that OVS keeps it.
func (b *OVSBridge) port(name string, mtu int, s PortSettings) OVSPort {
	op := OVSPort{Bridge: b.name, Name: name, Tag: s.VLAN, Trunks: s.Trunks.List(), MTU: mtu}
	switch {
	case s.VLAN != 0 && !s.Trunks.IsEmpty():
		// Untagged frames in the tag's VLAN, the trunks tagged, as
		// Proxmox does.
		op.VLANMode = VLANNativeUntagged
	case s.VLAN != 0:
		op.VLANMode = VLANAccess
	case !s.Trunks.IsEmpty():
		op.VLANMode = VLANTrunk
	}
	// The names Neutron and libvirt use.
	for k, v := range map[string]string{"vm-name": s.VMName, "attached-mac": s.GuestMAC,
		"vm-uuid": s.VMUUID, "iface-id": s.LogicalPort} {
		if v == "" {
			continue
		}
		if op.ExternalIDs == nil {
			op.ExternalIDs = map[string]string{}
		}
		op.ExternalIDs[k] = v
	}
	if s.LogicalPort != "" {
		op.ExternalIDs["iface-status"] = "active"
	}
	// The keys the helpers set and s does not give go: a port left with
	// another VM's iface-id would be bound to that VM's logical port.
	op.RemoveExternalIDs = unsetIDs(op.ExternalIDs)
	return op
}

// attachTo is the target of an attach: the bridge and the port's VLANs.
func attachTo(b *OVSBridge, op OVSPort) string {
	s := b.String()
	var v []string
	if op.Tag != 0 {
		v = append(v, "tag="+strconv.Itoa(op.Tag))
	}
	if len(op.Trunks) > 0 {
		v = append(v, "trunks="+listOrNone(op.Trunks))
	}
	if len(v) > 0 {
		s += " with " + strings.Join(v, " ")
	}
	if lsp := op.ExternalIDs["iface-id"]; lsp != "" {
		s += " as OVN logical port " + lsp
	}
	return s
}

// checkLimits refuses rates: Open vSwitch limits what a port sends with
// ingress_policing_rate, which it applies with tc's police action on a
// cls_basic filter; on kernels without them (these build machines')
// ovs-vswitchd logs "adding cls_basic policing action failed" and the
// port goes unpoliced, with no error in the database. What a port
// receives a QoS row (linux-htb) would shape; its effect with the
// userspace datapath is not measured, so it is not offered either.
func (b *OVSBridge) checkLimits(s PortSettings) error {
	switch {
	case s.Inbound.Set():
		return &SettingError{Setting: SettingInboundRate, Value: FormatRate(s.Inbound.Rate),
			Reason: "applies to ports of Linux bridges; " + b.name + " is an Open vSwitch bridge, for which a QoS row (linux-htb) would do it and is not implemented"}
	case s.Outbound.Set():
		return &SettingError{Setting: SettingOutboundRate, Value: FormatRate(s.Outbound.Rate),
			Reason: "applies to ports of Linux bridges; " + b.name + " is an Open vSwitch bridge, which polices with tc's police action (ingress_policing_rate): kernels without it, as these, leave the port unpoliced, so it is not implemented"}
	}
	return nil
}
