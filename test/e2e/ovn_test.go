package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// The OVN tests' logical network: switch ls0 with a port per guest and a
// logical router whose port answers at the seed's gateway address, on
// every chassis.
const (
	ovnRouterMAC = "02:00:00:00:00:01"
	ovnRouter    = hostAddr
)

// An ovnGuest is a guest of the OVN tests: a peer on its own hypervisor,
// bound to a logical port, with a UUID for vm-uuid.
type ovnGuest struct {
	peer
	hv   *nstest.Hypervisor
	lsp  string
	uuid string
	name string
	dir  string // the VM file, config and run directory: root's alone, as qemu-launch trusts only such a VM file
}

// ovnLab starts the lab with two hypervisors, the logical switch with a
// port for each guest and the logical router, and returns the guests'
// places.
func ovnLab(t *testing.T, encap string) (*nstest.OVNLab, *ovnGuest, *ovnGuest) {
	t.Helper()
	lab := nstest.NewOVNLab(t, encap)
	a := &ovnGuest{peer: peerA, hv: lab.AddHypervisor(t, "hv1"), lsp: "vm-a", name: "guest-a",
		uuid: "8f3c4a55-0000-4000-8000-00000000000a", dir: nstest.TrustedDir(t)}
	b := &ovnGuest{peer: peerB, hv: lab.AddHypervisor(t, "hv2"), lsp: "vm-b", name: "guest-b",
		uuid: "8f3c4a55-0000-4000-8000-00000000000b", dir: nstest.TrustedDir(t)}
	lab.Meshed(t)
	lab.Nbctl(t, "ls-add", "ls0")
	for _, g := range []*ovnGuest{a, b} {
		lab.Nbctl(t, "lsp-add", "ls0", g.lsp, "--", "lsp-set-addresses", g.lsp, g.mac+" "+g.addr)
	}
	lab.Nbctl(t, "lr-add", "lr0", "--", "lrp-add", "lr0", "lrp0", ovnRouterMAC, ovnRouter+"/24")
	lab.Nbctl(t, "lsp-add", "ls0", "ls0-lr0", "--", "lsp-set-type", "ls0-lr0", "router",
		"--", "lsp-set-addresses", "ls0-lr0", "router", "--", "lsp-set-options", "ls0-lr0", "router-port=lrp0")
	lab.Nbctl(t, "--wait=hv", "sync")
	return lab, a, b
}

// launch starts the guest under qemu-launch on its hypervisor from a VM
// file whose NIC joins br-int as its logical port; nic adds lines to
// [NIC].
func (g *ovnGuest) launch(t *testing.T, gf guest.Files, c guest.Config, nic ...string) *vm {
	t.Helper()
	c.Addrs = []string{g.addr + "/24"}
	file := filepath.Join(g.dir, g.name+".vm")
	vmFile := fmt.Sprintf(`[VM]
Name=%s
UUID=%s
Accel=tcg
Memory=256M
NoReboot=yes
Graphics=no
Kernel=%s
Initrd=%s
Append=%s

[NIC]
ID=n0
Model=virtio-net-pci
MACAddress=%s
Ifname=%s
Bridge=br-int
LogicalPort=%s
%s`, g.name, g.uuid, gf.Kernel, gf.Initrd, c.Append(), g.mac, g.tap, g.lsp, strings.Join(append(nic, ""), "\n"))
	if err := os.WriteFile(file, []byte(vmFile), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(append(g.hv.Env, helperEnv(g.dir)...), "QEMU_OVS_DB="+g.hv.OVS.DB)
	return startVM(t, g.hv.NS, env, launcher(t), "--config", file)
}

// TestOVN boots a guest on each of two hypervisors through qemu-launch,
// each NIC joining br-int as a logical port (LogicalPort=) of one logical
// switch: over Geneve and over VXLAN, the guests ping each other across
// the tunnel and the logical router, each with the MTU the overlay leaves
// (host_mtu), so that a 1500-byte IP datagram arrives; each port is bound
// on its own chassis while the guests run, and gone from br-int and
// unbound after they stop. A logical port the northbound database does
// not have fails the launch, naming it, and leaves nothing behind.
func TestOVN(t *testing.T) {
	for _, tc := range []struct{ encap, mtu string }{{"geneve", "1442"}, {"vxlan", "1450"}} {
		t.Run(tc.encap, func(t *testing.T) {
			nstest.RequireOVN(t)
			_, gf := setup(t)
			lab, a, b := ovnLab(t, tc.encap)
			// Each pings the other, once it answers, and the router;
			// A also sends B 1500-byte IP datagrams, which its MTU
			// splits. Each waits for the other's pings, the first
			// reply of each series included.
			va := a.launch(t, gf, guest.Config{Gateway: ovnRouter, Ping: []string{b.addr, ovnRouter, b.addr + "@1472"},
				Reach: true, Answer: pings + 1, Timeout: bootTimeout})
			vb := b.launch(t, gf, guest.Config{Gateway: ovnRouter, Ping: []string{a.addr, ovnRouter},
				Reach: true, Answer: 2 * (pings + 1), Timeout: bootTimeout})
			va.ready(t)
			vb.ready(t)
			for _, g := range []*ovnGuest{a, b} {
				checkOVNPort(t, lab, g, tc.mtu)
			}
			va.passed(t)
			vb.passed(t)
			for _, v := range []*vm{va, vb} {
				if r, _ := v.console.Wait("link eth0 ", time.Second); !strings.HasSuffix(r, " mtu "+tc.mtu) {
					t.Errorf("guest's NIC: %q, want mtu %s (host_mtu)", r, tc.mtu)
				}
			}
			reported(t, "A", va, "ping "+b.addr+"@1472 ok")
			for _, g := range []*ovnGuest{a, b} {
				checkOVNGone(t, lab, g, true)
			}
			if tc.encap == "geneve" {
				unknownLogicalPort(t, lab, a, gf)
			}
		})
	}
}

// checkOVNPort checks a running guest's port: the tap's MTU, the identity
// in the OVS interface's external_ids, OVN's mark, and the binding on the
// guest's own chassis.
func checkOVNPort(t *testing.T, lab *nstest.OVNLab, g *ovnGuest, mtu string) {
	t.Helper()
	if got := fmt.Sprint(g.hv.Link(t, g.tap).Attrs().MTU); got != mtu {
		t.Errorf("%s: tap MTU %s, want %s", g.tap, got, mtu)
	}
	for k, want := range map[string]string{"iface-id": g.lsp, "iface-status": "active", "attached-mac": g.mac,
		"vm-uuid": g.uuid, "vm-name": g.name, "ovn-installed": "true"} {
		got := strings.Trim(g.hv.Vsctl(t, "--if-exists", "get", "Interface", g.tap, "external_ids:"+k), `"`)
		if got != want {
			t.Errorf("%s: external_ids:%s=%q, want %q", g.tap, k, got, want)
		}
	}
	chassis := lab.Sbctl(t, "--bare", "--columns=_uuid", "find", "Chassis", "name="+g.hv.Name)
	if got := lab.Sbctl(t, "--bare", "--columns=chassis", "find", "Port_Binding", "logical_port="+g.lsp); got != chassis {
		t.Errorf("logical port %s bound to chassis %q, want %s (%s)\n%s", g.lsp, got, g.hv.Name, chassis, lab.Sbctl(t, "show"))
	}
}

// checkOVNGone checks that a stopped guest left no port on br-int and,
// when OVN has its logical port, left it unbound.
func checkOVNGone(t *testing.T, lab *nstest.OVNLab, g *ovnGuest, known bool) {
	t.Helper()
	if ports := g.hv.Vsctl(t, "list-ports", "br-int"); strings.Contains("\n"+ports+"\n", "\n"+g.tap+"\n") {
		t.Errorf("%s left on br-int of %s: %q", g.tap, g.hv.Name, ports)
	}
	if g.hv.Exists(g.tap) {
		t.Errorf("tap %s left in %s", g.tap, g.hv.Name)
	}
	if !known {
		return
	}
	// ovn-controller releases the port once it is gone from br-int.
	lab.Sbctl(t, "--timeout=30", "wait-until", "Port_Binding", g.lsp, "chassis=[]")
}

// unknownLogicalPort launches a guest whose LogicalPort= the northbound
// database does not have: the launch fails within OVNWait=, with one line
// naming the port and what OVN says, and leaves no tap, port or record.
func unknownLogicalPort(t *testing.T, lab *nstest.OVNLab, a *ovnGuest, gf guest.Files) {
	t.Helper()
	g := *a
	g.lsp, g.name = "no-such-port", "guest-x"
	v := g.launch(t, gf, guest.Config{Gateway: "none", Ping: []string{"none"}}, "OVNWait=3s")
	if err := v.wait(t); err == nil {
		t.Fatalf("qemu-launch with LogicalPort=%s succeeded", g.lsp)
	}
	want := "logical port " + g.lsp + " is not in the northbound database"
	if !strings.Contains(v.stderr.String(), want) {
		t.Errorf("qemu-launch's error does not say %q:\n%s", want, v.stderr.String())
	}
	if hasReport(v.console.Reports(), "boot") {
		t.Errorf("the guest booted: %q", v.console.Reports())
	}
	checkOVNGone(t, lab, &g, false)
	if recs, _ := filepath.Glob(filepath.Join(g.dir, "run", "*", "*.conf")); len(recs) != 0 {
		t.Errorf("records left: %q", recs)
	}
}

// TestOVNWithoutMTURule gives the guests' ports MTU=1500, overriding the
// overlay's MTU: the largest IP packet that crosses the Geneve tunnel is
// then 1442 bytes, and a 1443-byte one is lost without a word, which is
// what the MTU rule is for.
func TestOVNWithoutMTURule(t *testing.T) {
	nstest.RequireOVN(t)
	_, gf := setup(t)
	_, a, b := ovnLab(t, "geneve")
	// B answers A's pings of 84, 1442 and 1443 bytes (each series after
	// one of 84 bytes that A waits for), and pings A while it is up.
	vb := b.launch(t, gf, guest.Config{Gateway: "none", Ping: []string{a.addr}, Reach: true,
		Answer: 2*(pings+1) + 1, Timeout: bootTimeout}, "MTU=1500")
	vb.ready(t)
	va := a.launch(t, gf, guest.Config{Gateway: "none", Ping: []string{b.addr, b.addr + "@1414", b.addr + "@1415"},
		Reach: true, Timeout: 15 * time.Second}, "MTU=1500")
	va.wait(t)
	reported(t, "A", va, "link eth0 ", "ping "+b.addr+" ok", "ping "+b.addr+"@1414 ok", "ping "+b.addr+"@1415 fail 0/")
	if r, _ := va.console.Wait("link eth0 ", time.Second); !strings.HasSuffix(r, " mtu 1500") {
		t.Errorf("guest's NIC: %q, want mtu 1500", r)
	}
	vb.passed(t)
}
