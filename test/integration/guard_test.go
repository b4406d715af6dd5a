package integration

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
)

// guardConfig limits taps tap* both ways and denies them spoofing.
const guardConfig = `[Interface]
Name=tap*
Bridge=virbr0
InboundRate=1M
OutboundRate=500K
OutboundBurst=64K
Spoofing=deny
IPAddress=192.168.122.10
GuestMAC=52:54:00:12:34:56
`

// guardState is what a user sees of a port's limits and rules: the
// chains of the guard table with their rule counts, the interfaces whose
// root qdisc is a tbf, and the ifb devices.
type guardState struct {
	chains map[string]int
	tbfs   []string
	ifbs   []string
}

func (e *env) guardState() guardState {
	e.t.Helper()
	fd, err := e.ns.Conn.NetNS()
	if err != nil {
		e.t.Fatal(err)
	}
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		e.t.Fatal(err)
	}
	chains, err := nc.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		e.t.Fatal(err)
	}
	s := guardState{chains: map[string]int{}}
	for _, ch := range chains {
		if ch.Table.Name != bridge.GuardTable {
			continue
		}
		rules, err := nc.GetRules(ch.Table, ch)
		if err != nil {
			e.t.Fatal(err)
		}
		s.chains[ch.Name] = len(rules)
	}
	links, err := e.ns.Handle.LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range links {
		if l.Type() == "ifb" {
			s.ifbs = append(s.ifbs, l.Attrs().Name)
		}
		qs, err := e.ns.Handle.QdiscList(l)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, q := range qs {
			if tbf, ok := q.(*netlink.Tbf); ok && q.Attrs().Parent == netlink.HANDLE_ROOT && q.Attrs().LinkIndex == l.Attrs().Index {
				s.tbfs = append(s.tbfs, l.Attrs().Name+"@"+strconv.FormatUint(tbf.Rate*8, 10))
			}
		}
	}
	return s
}

// TestGuardAndLimits: qemu-ifup --dry-run shows the rules and limits,
// qemu-ifup sets them (a chain, two tbf qdiscs, an ifb device), --check
// finds nothing to do, qemu-ifdown removes them; a failed ifup undoes
// them; Spoofing=deny without the guest's MAC is one line naming the key.
func TestGuardAndLimits(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	tap := e.ns.AddTap(t, "tap0")
	ifb := bridge.IfbPrefix + strconv.Itoa(tap.Attrs().Index)
	e.writeConfig(guardConfig)

	r := e.run("qemu-ifup", "--dry-run", "tap0")
	for _, want := range []string{
		"tap0: nftables chain port-tap0: source MAC 52:54:00:12:34:56; sources 192.168.122.10; no DHCP server, no router advertisements; outbound limit on " + ifb,
		"tap0: limit traffic to the guest to 1M burst 32K",
		"tap0: limit traffic from the guest to 500K burst 64K (through " + ifb + ")",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("qemu-ifup --dry-run: %v, want a line %q", r, want)
		}
	}
	if s := e.guardState(); len(s.chains) != 0 || len(s.tbfs) != 0 || len(s.ifbs) != 0 {
		t.Errorf("--dry-run changed something: %+v", s)
	}

	if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup: %v", r)
	}
	s := e.guardState()
	if s.chains["ports"] != 1 || s.chains["port-tap0"] < 10 {
		t.Errorf("chains after ifup = %v, want one jump and tap0's rules", s.chains)
	}
	if strings.Join(s.tbfs, " ") != "tap0@1000000 "+ifb+"@500000" || strings.Join(s.ifbs, " ") != ifb {
		t.Errorf("after ifup: tbf on %v, ifb devices %v; want tap0 at 1M and %s at 500K", s.tbfs, s.ifbs, ifb)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 0 {
		t.Errorf("qemu-ifup --check after ifup: %v, want nothing to do", r)
	}
	if r := e.run("qemu-ifdown", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifdown: %v", r)
	}
	if s := e.guardState(); len(s.chains) != 1 || s.chains["ports"] != 0 || len(s.tbfs) != 0 || len(s.ifbs) != 0 {
		t.Errorf("after ifdown: %+v, want the empty base chain alone", s)
	}

	// A tap the bridge refuses (a macvlan holds its receive handler):
	// the rules and limits set before the attach are undone.
	tap1 := e.ns.AddTap(t, "tap1")
	if err := e.ns.Handle.LinkAdd(&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "mv1",
		ParentIndex: tap1.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		t.Fatal(err)
	}
	r = e.run("qemu-ifup", "tap1")
	if want := "qemu-ifup: attach tap1 to virbr0: device or resource busy (earlier changes undone)\n"; r.code != 1 || !strings.HasSuffix(r.stderr, want) {
		t.Errorf("qemu-ifup tap1: %v, want exit 1 ending %q", r, want)
	}
	if s := e.guardState(); len(s.chains) != 1 || s.chains["ports"] != 0 || len(s.tbfs) != 0 || len(s.ifbs) != 0 {
		t.Errorf("after a failed ifup: %+v, want nothing left", s)
	}

	// A tap that vanished before its ifdown: the ifdown removes its rules
	// and its ifb device all the same.
	e.ns.AddTap(t, "tap2")
	if r := e.run("qemu-ifup", "tap2"); r.code != 0 {
		t.Fatalf("qemu-ifup tap2: %v", r)
	}
	if err := e.ns.Handle.LinkDel(e.ns.Link(t, "tap2")); err != nil {
		t.Fatal(err)
	}
	r = e.run("qemu-ifdown", "tap2")
	if r.code != 0 || !strings.Contains(r.stderr, "qemu-ifdown: tap2: remove the rules of the vanished tap2\n") {
		t.Errorf("qemu-ifdown of a vanished tap2: %v", r)
	}
	if s := e.guardState(); len(s.chains) != 1 || s.chains["ports"] != 0 || len(s.ifbs) != 0 {
		t.Errorf("after the ifdown of a vanished tap: %+v, want nothing left", s)
	}

	e.writeConfig("[Interface]\nName=tap*\nBridge=virbr0\nSpoofing=deny\n")
	r = e.run("qemu-ifup", "tap0")
	want := "qemu-ifup: tap0: Spoofing=deny needs the guest's MAC, which is not known (GuestMAC= gives it, as does the VM file's MACAddress=)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("Spoofing=deny without a guest MAC: %v, want %q", r, want)
	}
}

// TestGuardConcurrent: eight ifups with rules and limits at once, each its
// own nftables transaction on one table, then eight ifdowns at once.
func TestGuardConcurrent(t *testing.T) {
	const n = 8
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	for i := range n {
		e.ns.AddTap(t, "tap"+strconv.Itoa(i))
	}
	e.writeConfig(guardConfig)
	all := func(prog string) {
		t.Helper()
		var wg sync.WaitGroup
		results := make([]result, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out, errb bytes.Buffer
				cmd := e.cmd(prog, "tap"+strconv.Itoa(i))
				cmd.Stdout, cmd.Stderr = &out, &errb
				code, err := nstest.ExitStatus(e.ns.Run(cmd))
				results[i] = result{code: code, stdout: out.String(), stderr: errb.String()}
				if err != nil {
					results[i].stderr += err.Error()
				}
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r.code != 0 {
				t.Errorf("%s tap%d: %v", prog, i, r)
			}
		}
	}
	all("qemu-ifup")
	s := e.guardState()
	if s.chains["ports"] != n || len(s.chains) != n+1 || len(s.tbfs) != 2*n || len(s.ifbs) != n {
		t.Errorf("after %d ifups at once: %d jumps, %d chains, %d tbf qdiscs, %d ifb devices; want %d, %d, %d, %d",
			n, s.chains["ports"], len(s.chains), len(s.tbfs), len(s.ifbs), n, n+1, 2*n, n)
	}
	all("qemu-ifdown")
	if s := e.guardState(); len(s.chains) != 1 || s.chains["ports"] != 0 || len(s.tbfs) != 0 || len(s.ifbs) != 0 {
		t.Errorf("after %d ifdowns at once: %+v, want the empty base chain alone", n, s)
	}
}
