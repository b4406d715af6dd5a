package tap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

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
	// OpOVSSet reconfigures an Open vSwitch port already on its bridge
	// (VLANs, mtu_request, external-ids).
	OpOVSSet
	// OpFlag sets one flag of a Linux bridge port (Change.Flag).
	OpFlag
	// OpFDB adds the static forwarding entry for the guest's MAC on a
	// Linux bridge port whose learning is off.
	OpFDB
)

// A Change is one step of a Plan, with the values it changes from and to.
type Change struct {
	Op       Op
	From, To string
	// Flag is the flag an OpFlag sets.
	Flag bridge.FlagChange
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
	case OpOVSSet:
		return "set Open vSwitch port: " + c.From + " -> " + c.To
	case OpFlag:
		return c.Flag.String()
	case OpFDB:
		return "static fdb entry " + c.To
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
	// ovs is the port's Open vSwitch settings when master is an OVS
	// bridge.
	ovs *bridge.OVSPort
	// flags are a Linux bridge port's flags; fdb says whether it has the
	// static entry for the guest's MAC (guestMAC).
	flags link.BridgePort
	fdb   bool
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
	guestMAC   net.HardwareAddr
	// crossKind is set when the tap moves between a Linux and an Open
	// vSwitch bridge: an OpDetach, then an OpAttach.
	crossKind bool

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
	br, err := bridge.Find(c, p.OVS, p.Bridge)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkKind(br, p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cur, err := currentBridge(c, l, br, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cur != nil && !bridge.Same(cur, br) && !p.AllowMove {
		return nil, fmt.Errorf("%s: already a port of %s, not %s (AllowMove=yes in the config moves it)", name, cur.Name, p.Bridge)
	}
	pl := &Plan{Tap: name, Bridge: p.Bridge, BridgeDown: br.Kind == bridge.Linux && !br.Up, link: l, have: stateOf(l, cur)}
	if bridge.Same(cur, br) {
		// The tap's bridge is br itself, so that comparing the two
		// says whether to attach.
		pl.have.master = br
	}
	if cur != nil && cur.Kind == bridge.OpenVSwitch {
		if pl.have.ovs, err = p.OVS.PortOn(cur.Name, name, ovsExternalIDs...); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if br.Kind == bridge.Linux {
		if err := pl.readPort(c, br, p); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
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
	if br.Kind == bridge.OpenVSwitch {
		want.ovs = ovsPort(br, name, want.mtu, p)
	} else {
		want.flags = wantFlags(have.flags, p.Flags)
		want.fdb = pl.guestMAC != nil
	}
	pl.want = want

	if have.mtu != want.mtu {
		pl.add(OpMTU, strconv.Itoa(have.mtu), strconv.Itoa(want.mtu))
	}
	if !bytes.Equal(have.mac, want.mac) {
		pl.add(OpMAC, have.mac.String(), want.mac.String())
	}
	switch {
	case bridge.Same(have.master, want.master):
		if br.Kind == bridge.OpenVSwitch && !sameOVS(have.ovs, want.ovs) {
			from, to := describeOVS(have.ovs, want.ovs)
			pl.add(OpOVSSet, from, to)
		}
	case have.master != nil && have.master.Kind != br.Kind:
		// From one kind to the other: off the old bridge, then onto br.
		pl.add(OpDetach, bridgeName(have.master), "")
		pl.add(OpAttach, "", attachTo(br, want.ovs))
		pl.crossKind = true
	default:
		from := ""
		if have.master != nil {
			from = bridgeName(have.master)
		}
		pl.add(OpAttach, from, attachTo(br, want.ovs))
	}
	for _, fc := range p.Flags.Changes(&have.flags) {
		pl.Changes = append(pl.Changes, Change{Op: OpFlag, From: onOff(!fc.On), To: onOff(fc.On), Flag: fc})
	}
	if want.fdb && !have.fdb {
		pl.add(OpFDB, "", pl.guestMAC.String())
	}
	if have.promisc != want.promisc {
		pl.add(OpPromisc, "off", "on")
	}
	if !have.up {
		pl.add(OpUp, "down", "up")
	}
	return pl, nil
}

// checkKind refuses settings br's kind cannot carry.
func checkKind(br *bridge.Bridge, p Port) error {
	switch br.Kind {
	case bridge.Linux:
		key := ""
		switch {
		case p.VLAN != 0:
			key = "VLAN=" + strconv.Itoa(p.VLAN)
		case !p.Trunks.IsEmpty():
			key = "Trunks=" + p.Trunks.String()
		default:
			return nil
		}
		return fmt.Errorf("%s needs an Open vSwitch bridge and %s is a Linux bridge: VLANs on Linux bridges (vlan_filtering) are not implemented, as they could not be tested on the kernel of the build machines", key, br.Name)
	case bridge.OpenVSwitch:
		for f, key := range flagKeys {
			if _, given := p.Flags.Get(bridge.Flag(f)); given {
				return fmt.Errorf("%s= applies to ports of Linux bridges; %s is an Open vSwitch bridge", key, br.Name)
			}
		}
	}
	return nil
}

// flagKeys are the config keys of the port flags, indexed by flag.
var flagKeys = [...]string{
	bridge.FlagIsolated:     "Isolated",
	bridge.FlagLearning:     "Learning",
	bridge.FlagUnicastFlood: "UnicastFlood",
}

// currentBridge is the bridge the tap is a port of, nil for none: its
// kernel master, or the Open vSwitch bridge OVS names for it when the
// master is ovs-system (kernel datapath) or, for a tap without master,
// when OVS has it (userspace datapath). A tap without master that is to
// join a Linux bridge is asked about only with AllowMove (asking costs a
// process), and then an Open vSwitch that cannot be asked has no port.
func currentBridge(c *link.Conn, l *link.Link, br *bridge.Bridge, p Port) (*bridge.Bridge, error) {
	switch {
	case l.MasterIndex == br.Index && br.Kind == bridge.Linux:
		return br, nil
	case l.MasterIndex != 0:
		return masterOf(c, l, p.OVS)
	case br.Kind == bridge.OpenVSwitch:
		return bridge.OVSBridgeOf(c, p.OVS, l)
	case p.AllowMove && p.OVS != nil:
		b, err := bridge.OVSBridgeOf(c, p.OVS, l)
		if errors.Is(err, bridge.ErrOVSUnavailable) {
			return nil, nil
		}
		return b, err
	}
	return nil, nil
}

// readPort reads what a Linux bridge port has of what p asks: its flags,
// and, for a guest MAC with learning off, the static entry.
func (pl *Plan) readPort(c *link.Conn, br *bridge.Bridge, p Port) error {
	// A port that joins (or moves to) br starts with the kernel's
	// defaults.
	if !bridge.Same(pl.have.master, br) || pl.link.BridgePort == nil {
		pl.have.flags = link.BridgePort{Learning: true, UnicastFlood: true}
	} else {
		pl.have.flags = *pl.link.BridgePort
	}
	if p.GuestMAC == "" || wantFlags(pl.have.flags, p.Flags).Learning {
		return nil
	}
	mac, err := net.ParseMAC(p.GuestMAC)
	if err != nil {
		return fmt.Errorf("guest MAC: %w", err)
	}
	pl.guestMAC = mac
	if bridge.Same(pl.have.master, br) {
		if pl.have.fdb, err = c.StaticFDB(pl.link, mac); err != nil {
			return fmt.Errorf("read fdb entry %s on %s: %w", mac, pl.Tap, err)
		}
	}
	return nil
}

// wantFlags is have with the flags f gives.
func wantFlags(have link.BridgePort, f bridge.PortFlags) link.BridgePort {
	if on, given := f.Get(bridge.FlagIsolated); given {
		have.Isolated = on
	}
	if on, given := f.Get(bridge.FlagLearning); given {
		have.Learning = on
	}
	if on, given := f.Get(bridge.FlagUnicastFlood); given {
		have.UnicastFlood = on
	}
	return have
}

// ovsPort is the Open vSwitch port p asks for, with the tap's MTU as
// mtu_request so that OVS keeps it.
func ovsPort(br *bridge.Bridge, name string, mtu int, p Port) *bridge.OVSPort {
	op := &bridge.OVSPort{Bridge: br.Name, Name: name, Tag: p.VLAN, Trunks: p.Trunks.List(), MTU: mtu}
	switch {
	case p.VLAN != 0 && !p.Trunks.IsEmpty():
		// Untagged frames in the tag's VLAN, the trunks tagged, as
		// Proxmox does.
		op.VLANMode = bridge.VLANNativeUntagged
	case p.VLAN != 0:
		op.VLANMode = bridge.VLANAccess
	case !p.Trunks.IsEmpty():
		op.VLANMode = bridge.VLANTrunk
	}
	if p.VMName != "" || p.GuestMAC != "" {
		op.ExternalIDs = map[string]string{}
		if p.VMName != "" {
			op.ExternalIDs["vm-name"] = p.VMName
		}
		if p.GuestMAC != "" {
			op.ExternalIDs["attached-mac"] = p.GuestMAC
		}
	}
	return op
}

// ovsExternalIDs are the keys of external-ids the helpers set.
var ovsExternalIDs = []string{"attached-mac", "vm-name"}

// sameOVS reports whether the port have is configured as want asks (keys
// of external-ids that want does not give are someone else's).
func sameOVS(have, want *bridge.OVSPort) bool {
	if have == nil || want == nil {
		return have == want
	}
	if have.Tag != want.Tag || !slices.Equal(have.Trunks, want.Trunks) || have.VLANMode != want.VLANMode || have.MTU != want.MTU {
		return false
	}
	for k, v := range want.ExternalIDs {
		if hv, ok := have.ExternalIDs[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// describeOVS shows the settings in which have and want differ, as
// ovs-vsctl would write them.
func describeOVS(have, want *bridge.OVSPort) (string, string) {
	var h, w []string
	field := func(name, hv, wv string) {
		if hv != wv {
			h, w = append(h, name+"="+hv), append(w, name+"="+wv)
		}
	}
	var hp bridge.OVSPort
	if have != nil {
		hp = *have
	}
	field("tag", intOrNone(hp.Tag), intOrNone(want.Tag))
	field("trunks", listOrNone(hp.Trunks), listOrNone(want.Trunks))
	field("vlan_mode", orNone(string(hp.VLANMode)), orNone(string(want.VLANMode)))
	field("mtu_request", intOrNone(hp.MTU), intOrNone(want.MTU))
	keys := make([]string, 0, len(want.ExternalIDs))
	for k := range want.ExternalIDs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		hv, ok := hp.ExternalIDs[k]
		if !ok {
			hv = "none"
		}
		field("external-ids:"+k, hv, want.ExternalIDs[k])
	}
	return strings.Join(h, " "), strings.Join(w, " ")
}

func intOrNone(n int) string {
	if n == 0 {
		return "none"
	}
	return strconv.Itoa(n)
}

func listOrNone(vs []int) string {
	if len(vs) == 0 {
		return "none"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// bridgeName names a bridge in a change: Open vSwitch bridges say so.
func bridgeName(b *bridge.Bridge) string {
	if b.Kind == bridge.OpenVSwitch {
		return "Open vSwitch bridge " + b.Name
	}
	return b.Name
}

// attachTo is the target of an attach: the bridge and, for an Open
// vSwitch port, its VLANs.
func attachTo(b *bridge.Bridge, op *bridge.OVSPort) string {
	s := bridgeName(b)
	if op == nil {
		return s
	}
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
	return s
}

// PlanDown reads the tap called name and returns the changes that take it
// off its bridge and, if promisc is set, turn off the promiscuous mode ifup
// turned on. A tap that is gone or on no bridge gives a plan without
// changes: QEMU may have removed it already, or a crashed QEMU never ran
// the down-script. Taps on Open vSwitch bridges need PlanDownFor.
func PlanDown(c *link.Conn, name string, promisc bool) (*Plan, error) {
	return PlanDownFor(c, name, Port{Promisc: promisc})
}

// PlanDownFor is PlanDown for a tap ifup configured as p: p.Promisc says
// whether ifup turned promiscuous mode on; with p.OVS, a tap that is a
// port of an Open vSwitch bridge is removed from it, also when the tap
// itself is gone (OVS keeps a port whose device vanished), so the port
// never outlives the guest.
func PlanDownFor(c *link.Conn, name string, p Port) (*Plan, error) {
	l, err := getTap(c, name)
	if errors.Is(err, ErrNoSuchInterface) {
		pl := &Plan{Tap: name, Gone: true}
		if p.OVS == nil || !mayBeOVS(c, p.Bridge) {
			return pl, nil
		}
		br, err := p.OVS.PortBridge(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if br != "" {
			pl.Bridge = br
			pl.have.master = &bridge.Bridge{Name: br, Kind: bridge.OpenVSwitch, Switch: p.OVS}
			pl.add(OpDetach, bridgeName(pl.have.master), "")
		}
		return pl, nil
	}
	if err != nil {
		return nil, err
	}
	var cur *bridge.Bridge
	if p.OVS != nil && l.MasterIndex == 0 && mayBeOVS(c, p.Bridge) {
		cur, err = bridge.OVSBridgeOf(c, p.OVS, l)
	} else {
		cur, err = masterOf(c, l, p.OVS)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The detach is the last step: no OVS settings to put back.
	pl := &Plan{Tap: name, link: l, have: stateOf(l, cur)}
	pl.want = pl.have
	if pl.have.promisc && p.Promisc {
		pl.want.promisc = false
		pl.add(OpPromiscOff, "on", "off")
	}
	if cur != nil {
		pl.Bridge = cur.Name
		pl.want.master = nil
		pl.add(OpDetach, bridgeName(cur), "")
	}
	return pl, nil
}

// masterOf is the bridge of a tap with a kernel master: a Linux bridge,
// or, with o, the OVS bridge of a port whose master is a kernel datapath's
// ovs-system (asked only then, so a Linux port costs one lookup).
func masterOf(c *link.Conn, l *link.Link, o *bridge.OVS) (*bridge.Bridge, error) {
	b, err := bridge.Of(c, l)
	if errors.Is(err, bridge.ErrNotBridge) && o != nil && bridge.IsOVSMaster(c, l) {
		return bridge.OVSBridgeOf(c, o, l)
	}
	return b, err
}

// mayBeOVS reports whether the interface called name could be an Open
// vSwitch bridge's own (kind "openvswitch" or "tun"): only then is OVS
// asked about a tap without master, since asking costs a process.
func mayBeOVS(c *link.Conn, name string) bool {
	if name == "" {
		return false
	}
	l, err := c.ByName(name)
	return err == nil && (l.Kind == "openvswitch" || l.Kind == "tun")
}

func (pl *Plan) add(op Op, from, to string) {
	pl.Changes = append(pl.Changes, Change{Op: op, From: from, To: to})
}
