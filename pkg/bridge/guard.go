package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// The rules on the frames guests send into Linux bridges live in one
// nftables table of the bridge family per network namespace. Its base
// chain, at the bridges' prerouting hook, sends each guarded port's
// frames to a chain of that port's own:
//
//	table bridge qemu-tap-helpers {
//		chain ports { type filter hook prerouting priority filter; policy accept;
//			iifname "tap0" jump port-tap0
//		}
//		chain port-tap0 { ether saddr != 52:54:00:12:34:56 drop; ... }
//	}
//
// Each change to a port's rules is one netlink transaction. The table
// and its base chain stay once made: ports come and go under locks of
// their own, and removing the table could race with a port being added.
const (
	GuardTable  = "qemu-tap-helpers"
	guardBase   = "ports"
	GuardPrefix = "port-"
)

var (
	guardTable = &nftables.Table{Family: nftables.TableFamilyBridge, Name: GuardTable}
	accept     = nftables.ChainPolicyAccept
	guardChain = &nftables.Chain{
		Name: guardBase, Table: guardTable, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200),
		Policy: &accept,
	}
)

// GuardChain is the name of the chain holding the rules of the port
// called port.
func GuardChain(port string) string { return GuardPrefix + port }

func portChain(port string) *nftables.Chain {
	return &nftables.Chain{Name: GuardChain(port), Table: guardTable}
}

// nft opens a nftables connection in the namespace of c. Entering the
// namespace costs a thread switch; a caller already there (a helper, in
// its only namespace) skips it.
func nft(c *link.Conn) (*nftables.Conn, error) {
	if c.InCallerNS() {
		return nftables.New()
	}
	ns, err := c.NetNS()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	nc, err := nftables.New(nftables.WithNetNSFd(ns))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return nc, nil
}

// guards are the ports' rules as read: each port's jump from the base
// chain, by port name.
type guards struct {
	jumps map[string]*nftables.Rule
}

// readGuards reads which ports have rules. No table means none; so does
// a kernel without nftables, for a caller that asks for no rules.
func readGuards(nc *nftables.Conn) (guards, error) {
	g := guards{jumps: map[string]*nftables.Rule{}}
	rules, err := nc.GetRules(guardTable, guardChain)
	if errors.Is(err, unix.ENOENT) {
		return g, nil
	}
	if err != nil {
		return g, fmt.Errorf("read nftables table %s: %w", GuardTable, err)
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if v, ok := e.(*expr.Verdict); ok && v.Kind == expr.VerdictJump {
				if port, ok := strings.CutPrefix(v.Chain, GuardPrefix); ok {
					g.jumps[port] = r
				}
			}
		}
	}
	return g, nil
}

// A portGuard is one port's rules: the mark of the settings they were
// made from, and the rules themselves, to be put back by an undo.
type portGuard struct {
	mark  string
	rules []*nftables.Rule
}

// readPort reads the rules of port, whose jump is jump.
func readPort(nc *nftables.Conn, port string, jump *nftables.Rule) (*portGuard, error) {
	rules, err := nc.GetRules(guardTable, portChain(port))
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("read nftables chain %s: %w", GuardChain(port), err)
	}
	return &portGuard{mark: string(jump.UserData), rules: rules}, nil
}

// addPort adds to the transaction the chain of port with rules, and the
// jump to it, marked with mark.
func addPort(nc *nftables.Conn, port, mark string, rules [][]expr.Any) {
	nc.AddTable(guardTable)
	nc.AddChain(guardChain)
	ch := nc.AddChain(portChain(port))
	for _, r := range rules {
		nc.AddRule(&nftables.Rule{Table: guardTable, Chain: ch, Exprs: r})
	}
	nc.AddRule(&nftables.Rule{Table: guardTable, Chain: guardChain, Exprs: jumpTo(port), UserData: []byte(mark)})
}

// delPort adds to the transaction the removal of port's chain and of
// its jump.
func delPort(nc *nftables.Conn, port string, jump *nftables.Rule) {
	ch := portChain(port)
	nc.FlushChain(ch)
	if err := nc.DelRule(jump); err != nil {
		return
	}
	nc.DelChain(ch)
}

// putBack adds to the transaction port's rules as they were.
func putBack(nc *nftables.Conn, port string, old *portGuard) {
	var rules [][]expr.Any
	for _, r := range old.rules {
		rules = append(rules, r.Exprs)
	}
	addPort(nc, port, old.mark, rules)
}

// guardSteps are the steps that give port the rules s asks for, remove
// those it no longer asks for, and remove the rules of ports that no
// longer exist: none when all is as asked.
func guardSteps(c *link.Conn, port *link.Link, s PortSettings) ([]Step, error) {
	nc, err := nft(c)
	if err != nil {
		return nil, err
	}
	g, err := readGuards(nc)
	if err != nil {
		if !s.guarded() {
			return nil, nil
		}
		return nil, err
	}
	var gone []string
	for name := range g.jumps {
		if name == port.Name {
			continue
		}
		if _, err := c.ByName(name); errors.Is(err, link.ErrNotFound) {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	want := ""
	if s.guarded() {
		want = guardMark(s, port.Index)
	}
	jump := g.jumps[port.Name]
	var old *portGuard
	if jump != nil {
		if old, err = readPort(nc, port.Name, jump); err != nil {
			return nil, err
		}
	}
	var steps []Step
	if len(gone) > 0 {
		steps = append(steps, Step{
			Action: ActGuard,
			Desc:   "remove the rules of the vanished " + strings.Join(gone, ", "),
			Apply: func(c *link.Conn, _ *link.Link) error {
				nc, err := nft(c)
				if err != nil {
					return err
				}
				for _, name := range gone {
					delPort(nc, name, g.jumps[name])
				}
				if err := nc.Flush(); err != nil {
					return fmt.Errorf("remove the rules of %s: %w", strings.Join(gone, ", "), err)
				}
				return delIfbs(c, gone, g)
			},
		})
	}
	switch {
	case old == nil && want == "", old != nil && old.mark == want:
		return steps, nil
	case want == "":
		return append(steps, Step{
			Action: ActGuard,
			Desc:   "remove the rules on frames from the guest",
			Apply: func(c *link.Conn, port *link.Link) error {
				return replaceGuard(c, port.Name, jump, nil, "", nil)
			},
			Undo: func(c *link.Conn, port *link.Link) error {
				return replaceGuard(c, port.Name, nil, old, "", nil)
			},
		}), nil
	}
	rules, err := guardRules(s)
	if err != nil {
		return nil, err
	}
	return append(steps, Step{
		Action: ActGuard,
		Desc:   "nftables chain " + GuardChain(port.Name) + ": " + want,
		Apply: func(c *link.Conn, port *link.Link) error {
			return replaceGuard(c, port.Name, jump, nil, want, rules)
		},
		Undo: func(c *link.Conn, port *link.Link) error {
			// The jump added has a handle of its own: read it again.
			return replaceGuard(c, port.Name, nil, old, "", nil)
		},
	}), nil
}

// delIfbs removes the ifb devices the jumps of the ports gone name.
func delIfbs(c *link.Conn, gone []string, g guards) error {
	var h *netlink.Handle
	for _, name := range gone {
		ifb := ifbOf(string(g.jumps[name].UserData))
		if ifb == "" {
			continue
		}
		if h == nil {
			var err error
			if h, err = handle(c); err != nil {
				return fmt.Errorf("netlink: %w", err)
			}
			defer h.Close()
		}
		if err := delIfb(h, ifb); err != nil {
			return err
		}
	}
	return nil
}

// ifbOf is the ifb device a mark names, "" for none.
func ifbOf(mark string) string {
	for _, w := range strings.Fields(mark) {
		w = strings.TrimRight(w, ";")
		if strings.HasPrefix(w, IfbPrefix) {
			return w
		}
	}
	return ""
}

// replaceGuard removes port's rules (those whose jump is jump; when jump
// is nil, those found now), then adds old's rules, or rules marked
// mark, in one transaction.
func replaceGuard(c *link.Conn, port string, jump *nftables.Rule, old *portGuard, mark string, rules [][]expr.Any) error {
	nc, err := nft(c)
	if err != nil {
		return err
	}
	if jump == nil {
		g, err := readGuards(nc)
		if err != nil {
			return err
		}
		jump = g.jumps[port]
	}
	if jump != nil {
		delPort(nc, port, jump)
	}
	switch {
	case old != nil:
		putBack(nc, port, old)
	case mark != "":
		addPort(nc, port, mark, rules)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("nftables rules of %s: %w", port, err)
	}
	return nil
}

// leaveGuard is the step that removes port's rules when it leaves its
// bridge, or nil when it has none. Unless last, its undo puts them back.
func leaveGuard(c *link.Conn, port *link.Link, last bool) (*Step, error) {
	nc, err := nft(c)
	if err != nil {
		return nil, nil
	}
	g, err := readGuards(nc)
	if err != nil {
		return nil, nil
	}
	jump := g.jumps[port.Name]
	if jump == nil {
		return nil, nil
	}
	st := &Step{
		Action: ActGuard,
		Desc:   "remove the rules on frames from the guest",
		Apply: func(c *link.Conn, port *link.Link) error {
			return replaceGuard(c, port.Name, jump, nil, "", nil)
		},
	}
	if !last {
		old, err := readPort(nc, port.Name, jump)
		if err != nil {
			return nil, err
		}
		st.Undo = func(c *link.Conn, port *link.Link) error { return replaceGuard(c, port.Name, nil, old, "", nil) }
	}
	return st, nil
}

// guardMark says what the rules of s do for the port with index index;
// it marks them, so that a port whose rules are as asked keeps them
// untouched. A port whose outbound traffic is limited has a chain, empty
// without other rules, whose mark names its ifb device: so the device of
// a port that vanished is found and removed with its chain.
func guardMark(s PortSettings, index int) string {
	var parts []string
	if s.DenySpoofing {
		parts = append(parts, "source MAC "+s.GuestMAC)
		if !s.Addrs.IsEmpty() {
			parts = append(parts, "sources "+s.Addrs.String())
		}
		parts = append(parts, "no DHCP server, no router advertisements")
	}
	if s.Outbound.Set() {
		parts = append(parts, "outbound limit on "+ifbName(index))
	}
	return strings.Join(parts, "; ")
}

// Ethernet types and IP protocols the rules match.
const (
	ethARP   = 0x0806
	ethIPv4  = 0x0800
	ethIPv6  = 0x86dd
	ethVLAN  = 0x8100
	ethQinQ  = 0x88a8
	protoUDP = 17
	protoV6  = 58 // ICMPv6
)

// guardRules are the rules of a port's chain for s, in order: the MAC,
// DHCP servers and router advertisements; then, with
// addresses, each allowed source returns and every other ARP, IPv4 and
// IPv6 packet is dropped.
func guardRules(s PortSettings) ([][]expr.Any, error) {
	var rules [][]expr.Any
	var mac net.HardwareAddr
	if s.DenySpoofing {
		var err error
		if mac, err = net.ParseMAC(s.GuestMAC); err != nil {
			return nil, fmt.Errorf("guest MAC: %w", err)
		}
		rules = append(rules,
			rule(load(expr.PayloadBaseLLHeader, 6, 6), compare(expr.CmpOpNeq, mac), verdict(expr.VerdictDrop)),
			rule(l4proto(protoUDP), load(expr.PayloadBaseTransportHeader, 0, 2), compare(expr.CmpOpEq, be16(67)), verdict(expr.VerdictDrop)),
			rule(l4proto(protoUDP), load(expr.PayloadBaseTransportHeader, 0, 2), compare(expr.CmpOpEq, be16(547)), verdict(expr.VerdictDrop)),
			rule(l4proto(protoV6), load(expr.PayloadBaseTransportHeader, 0, 1), compare(expr.CmpOpEq, []byte{134}), verdict(expr.VerdictDrop)),
		)
	}
	if !s.DenySpoofing || s.Addrs.IsEmpty() {
		return rules, nil
	}
	// Tagged frames hide their addresses from the rules below.
	rules = append(rules,
		rule(ethType(ethVLAN), verdict(expr.VerdictDrop)),
		rule(ethType(ethQinQ), verdict(expr.VerdictDrop)),
		// ARP for IPv4 over Ethernet only, from the guest's MAC.
		rule(ethType(ethARP), load(expr.PayloadBaseNetworkHeader, 0, 6), compare(expr.CmpOpNeq, []byte{0, 1, 8, 0, 6, 4}), verdict(expr.VerdictDrop)),
		rule(ethType(ethARP), load(expr.PayloadBaseNetworkHeader, 8, 6), compare(expr.CmpOpNeq, mac), verdict(expr.VerdictDrop)),
	)
	// 0.0.0.0 and :: are the sources of DHCP requests, ARP probes and
	// duplicate address detection, before the guest has an address.
	v4 := []netip.Addr{netip.IPv4Unspecified()}
	v6 := []netip.Addr{netip.IPv6Unspecified()}
	for _, a := range s.Addrs.List() {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	for _, a := range v4 {
		rules = append(rules,
			rule(ethType(ethARP), load(expr.PayloadBaseNetworkHeader, 14, 4), compare(expr.CmpOpEq, a.AsSlice()), verdict(expr.VerdictReturn)),
			rule(ethType(ethIPv4), load(expr.PayloadBaseNetworkHeader, 12, 4), compare(expr.CmpOpEq, a.AsSlice()), verdict(expr.VerdictReturn)),
		)
	}
	for _, a := range v6 {
		rules = append(rules, rule(ethType(ethIPv6), load(expr.PayloadBaseNetworkHeader, 8, 16), compare(expr.CmpOpEq, a.AsSlice()), verdict(expr.VerdictReturn)))
	}
	if len(v6) > 1 {
		// Link-local sources, which neighbour discovery needs.
		mask := netip.MustParseAddr("ffc0::").AsSlice()
		rules = append(rules, rule(ethType(ethIPv6), load(expr.PayloadBaseNetworkHeader, 8, 16),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: mask, Xor: make([]byte, 16)},
			compare(expr.CmpOpEq, netip.MustParseAddr("fe80::").AsSlice()), verdict(expr.VerdictReturn)))
	}
	return append(rules,
		rule(ethType(ethARP), verdict(expr.VerdictDrop)),
		rule(ethType(ethIPv4), verdict(expr.VerdictDrop)),
		rule(ethType(ethIPv6), verdict(expr.VerdictDrop)),
	), nil
}

// jumpTo is the base chain's rule for port: iifname "port" jump
// port-port.
func jumpTo(port string) []expr.Any {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, port)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		compare(expr.CmpOpEq, name),
		&expr.Verdict{Kind: expr.VerdictJump, Chain: GuardChain(port)},
	}
}

func rule(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case []expr.Any:
			out = append(out, p...)
		case expr.Any:
			out = append(out, p)
		}
	}
	return out
}

func load(base expr.PayloadBase, off, n uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}
}

func compare(op expr.CmpOp, data []byte) expr.Any {
	return &expr.Cmp{Op: op, Register: 1, Data: data}
}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func ethType(t uint16) []expr.Any {
	return []expr.Any{load(expr.PayloadBaseLLHeader, 12, 2), compare(expr.CmpOpEq, be16(t))}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, compare(expr.CmpOpEq, []byte{p})}
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// Leftovers returns the steps that remove what the bridges keep for a
// port whose device no longer exists: a Linux bridge's rules for it and
// the ifb device they name. None when nothing is kept, or when nftables
// cannot be asked.
func (h Host) Leftovers(c *link.Conn, port string) []Step {
	nc, err := nft(c)
	if err != nil {
		return nil
	}
	g, err := readGuards(nc)
	if err != nil || g.jumps[port] == nil {
		return nil
	}
	return []Step{{
		Action: ActGuard,
		Desc:   "remove the rules of the vanished " + port,
		Apply: func(c *link.Conn, _ *link.Link) error {
			nc, err := nft(c)
			if err != nil {
				return err
			}
			delPort(nc, port, g.jumps[port])
			if err := nc.Flush(); err != nil {
				return fmt.Errorf("remove the rules of %s: %w", port, err)
			}
			return delIfbs(c, []string{port}, g)
		},
	}}
}
