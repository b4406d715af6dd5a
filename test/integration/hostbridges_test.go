package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// ovsEnv is an env with a private Open vSwitch in its namespace, bridge
// ovsbr0 (MTU 1400), and the helpers pointed at its database.
func ovsEnv(t *testing.T) (*env, *nstest.OVS) {
	t.Helper()
	e := newEnv(t)
	sw := e.ns.StartOVS(t)
	sw.AddBridge(t, "ovsbr0")
	sw.Vsctl(t, "set", "Interface", "ovsbr0", "mtu_request=1400")
	e.vars = []string{"QEMU_OVS_DB=" + sw.DB}
	return e, sw
}

// ovsPort is what OVS holds of a port: its bridge and the settings the
// helpers give it.
type ovsPort struct {
	Bridge, Tag, Trunks, MTURequest, VMName string
}

func getOVSPort(t *testing.T, sw *nstest.OVS, name string) ovsPort {
	t.Helper()
	br, err := sw.TryVsctl("iface-to-br", name)
	if err != nil {
		return ovsPort{}
	}
	vm, _ := sw.TryVsctl("--if-exists", "get", "Interface", name, "external-ids:vm-name")
	return ovsPort{
		Bridge:     br,
		Tag:        sw.Vsctl(t, "get", "Port", name, "tag"),
		Trunks:     sw.Vsctl(t, "get", "Port", name, "trunks"),
		MTURequest: sw.Vsctl(t, "get", "Interface", name, "mtu_request"),
		VMName:     strings.Trim(vm, `"`),
	}
}

// TestOVSUpDown is the procedure on an Open vSwitch bridge: ifup adds the
// tap as an access port in one transaction, a second run changes nothing,
// --check agrees, a changed VLAN is applied to the existing port, ifdown
// removes the port, and a second ifdown has nothing to do.
func TestOVSUpDown(t *testing.T) {
	e, sw := ovsEnv(t)
	e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\nVLAN=10\n")
	mac := e.ns.AddTap(t, "tap0").Attrs().HardwareAddr.String()

	r := e.run("qemu-ifup", "tap0")
	want := []string{
		"qemu-ifup: tap0: mtu 1500 -> 1400",
		"qemu-ifup: tap0: mac " + mac + " -> fe" + mac[2:],
		"qemu-ifup: tap0: attach to Open vSwitch bridge ovsbr0 with tag=10 (bridge from " + e.config + ":3)",
		"qemu-ifup: tap0: promisc on",
		"qemu-ifup: tap0: up",
	}
	if diff := cmp.Diff(want, lines(r.stderr)); r.code != 0 || diff != "" {
		t.Fatalf("qemu-ifup tap0: %v; stderr (-want +got):\n%s", r, diff)
	}
	if p := e.port("tap0"); p.Master != "" || p.MTU != 1400 || p.MAC != "fe"+mac[2:] || !p.Promisc || !p.Up {
		t.Errorf("tap0 = %+v, want no kernel master (userspace datapath), mtu 1400, high MAC, promisc, up", p)
	}
	if got, want := getOVSPort(t, sw, "tap0"), (ovsPort{"ovsbr0", "10", "[]", "1400", ""}); got != want {
		t.Errorf("OVS port tap0 = %+v, want %+v", got, want)
	}

	r = e.run("qemu-ifup", "tap0")
	if r.code != 0 || r.stderr != "qemu-ifup: tap0: already a port of ovsbr0 as configured, nothing changed\n" {
		t.Errorf("second qemu-ifup: %v", r)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 0 || r.stdout != "tap0: port of ovsbr0 as configured\n" {
		t.Errorf("qemu-ifup --check: %v", r)
	}

	e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\nVLAN=20\nTrunks=30 40\n")
	r = e.run("qemu-ifup", "--check", "tap0")
	if r.code != 1 || r.stderr != "qemu-ifup: tap0: differs from the configuration: set Open vSwitch port: tag=10 trunks=none vlan_mode=access -> tag=20 trunks=30,40 vlan_mode=native-untagged\n" {
		t.Errorf("qemu-ifup --check after VLAN=20: %v", r)
	}
	r = e.run("qemu-ifup", "--dry-run", "tap0")
	if r.code != 0 || r.stdout != "tap0: set Open vSwitch port: tag=10 trunks=none vlan_mode=access -> tag=20 trunks=30,40 vlan_mode=native-untagged\n" {
		t.Errorf("qemu-ifup --dry-run after VLAN=20: %v", r)
	}
	if got := getOVSPort(t, sw, "tap0"); got.Tag != "10" {
		t.Errorf("--dry-run changed the port: %+v", got)
	}
	if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup after VLAN=20: %v", r)
	}
	if got, want := getOVSPort(t, sw, "tap0"), (ovsPort{"ovsbr0", "20", "[30, 40]", "1400", ""}); got != want {
		t.Errorf("OVS port tap0 = %+v, want %+v", got, want)
	}

	r = e.run("qemu-ifdown", "tap0")
	want = []string{"qemu-ifdown: tap0: promisc off", "qemu-ifdown: tap0: detach from Open vSwitch bridge ovsbr0"}
	if diff := cmp.Diff(want, lines(r.stderr)); r.code != 0 || diff != "" {
		t.Errorf("qemu-ifdown tap0: %v; stderr (-want +got):\n%s", r, diff)
	}
	if got := getOVSPort(t, sw, "tap0"); got != (ovsPort{}) {
		t.Errorf("OVS still has tap0 after ifdown: %+v", got)
	}
	if r := e.run("qemu-ifdown", "tap0"); r.code != 0 || r.stderr != "qemu-ifdown: tap0: on no bridge, nothing to do\n" {
		t.Errorf("second qemu-ifdown: %v", r)
	}
}

// TestOVSRollback makes an OVS ifup fail at three points and checks that
// the tap is left as it was, with one line saying why.
func TestOVSRollback(t *testing.T) {
	t.Run("database stopped before the run", func(t *testing.T) {
		e, sw := ovsEnv(t)
		e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\n")
		e.ns.AddTap(t, "tap0")
		before := e.port("tap0")
		sw.StopDB(t)
		r := e.run("qemu-ifup", "tap0")
		want := "qemu-ifup: tap0: ask Open vSwitch about bridge ovsbr0: Open vSwitch unavailable: " + sw.DB + ": database connection failed"
		if l := lines(r.stderr); r.code != 1 || len(l) != 1 || !strings.HasPrefix(l[0], want) {
			t.Errorf("qemu-ifup: %v, want exit 1 and one line starting %q", r, want)
		}
		if after := e.port("tap0"); after != before {
			t.Errorf("tap0 changed: %+v -> %+v", before, after)
		}
	})
	t.Run("ovs-vswitchd stopped: the port is taken out again", func(t *testing.T) {
		e, sw := ovsEnv(t)
		e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\n")
		e.ns.AddTap(t, "tap0")
		before := e.port("tap0")
		sw.StopSwitch(t)
		r := e.run("qemu-ifup", "tap0")
		if l := lines(r.stderr); r.code != 1 || len(l) != 3 || !strings.Contains(l[2], "Open vSwitch unavailable: no answer within 5s") ||
			!strings.HasSuffix(l[2], "(earlier changes undone)") {
			t.Errorf("qemu-ifup: %v, want exit 1, the mtu and mac changes, then the timeout, undone", r)
		}
		if after := e.port("tap0"); after != before {
			t.Errorf("tap0 half-changed: %+v -> %+v", before, after)
		}
		if got := sw.Vsctl(t, "list-ports", "ovsbr0"); got != "" {
			t.Errorf("ports left in the database: %q", got)
		}
	})
	t.Run("database stopped mid-run", func(t *testing.T) {
		e, sw := ovsEnv(t)
		e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\n")
		e.ns.AddTap(t, "tap0")
		before := e.port("tap0")
		// An ovs-vsctl that stops the database right after the
		// transaction that adds the port, so the next question to OVS
		// fails.
		dir := t.TempDir()
		real, err := exec.LookPath("ovs-vsctl")
		if err != nil {
			t.Fatal(err)
		}
		// ovsdb-server removes its socket as it exits: wait for that
		// (at most 30 s) before the helper goes on.
		sock := strings.TrimPrefix(sw.DB, "unix:")
		script := "#!/bin/sh\n" + real + " \"$@\"\nrc=$?\ncase \"$*\" in *add-port*)\n" +
			"  kill " + sw.DBPid() + "\n  n=0; while [ -e " + sock + " ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done ;;\nesac\nexit $rc\n"
		if err := os.WriteFile(filepath.Join(dir, "ovs-vsctl"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		e.vars = append(e.vars, "PATH="+dir+":/usr/sbin:/usr/bin:/sbin:/bin")
		r := e.run("qemu-ifup", "tap0")
		if l := lines(r.stderr); r.code != 1 || len(l) != 3 || !strings.HasPrefix(l[2], "qemu-ifup: attach tap0 to ovsbr0: ") ||
			!strings.Contains(l[2], "database connection failed") ||
			!strings.Contains(l[2], "undoing earlier changes failed: remove tap0 from Open vSwitch") {
			t.Errorf("qemu-ifup: %v, want exit 1, the mtu and mac changes, then the failed read-back whose undo in OVS failed", r)
		}
		if after := e.port("tap0"); after.MTU != before.MTU || after.MAC != before.MAC {
			t.Errorf("tap0's mtu and mac not undone: %+v -> %+v", before, after)
		}
	})
}

// TestVLANOnLinuxBridge: VLAN= and Trunks= on a Linux bridge are refused
// (not implemented: vlan_filtering could not be tested here), and port
// flags on an OVS bridge likewise; the tap is not touched.
func TestVLANOnLinuxBridge(t *testing.T) {
	e, _ := ovsEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "tap0")
	before := e.port("tap0")
	for _, tt := range []struct{ config, want string }{
		{"[Interface]\nName=tap0\nVLAN=10\n",
			"qemu-ifup: tap0: VLAN=10 needs an Open vSwitch bridge and virbr0 is a Linux bridge: VLANs on Linux bridges (vlan_filtering) are not implemented\n"},
		{"[Interface]\nName=tap0\nTrunks=10 20\n",
			"qemu-ifup: tap0: Trunks=10,20 needs an Open vSwitch bridge and virbr0 is a Linux bridge: VLANs on Linux bridges (vlan_filtering) are not implemented\n"},
		{"[Interface]\nName=tap0\nBridge=ovsbr0\nIsolated=yes\n",
			"qemu-ifup: tap0: Isolated= applies to ports of Linux bridges; ovsbr0 is an Open vSwitch bridge\n"},
	} {
		e.writeConfig(tt.config)
		if r := e.run("qemu-ifup", "tap0"); r.code != 1 || r.stderr != tt.want {
			t.Errorf("qemu-ifup with %q: %v, want %q", tt.config, r, tt.want)
		}
		if after := e.port("tap0"); after != before {
			t.Errorf("tap0 changed: %+v -> %+v", before, after)
		}
	}
}

// TestPortFlags sets Isolated=, Learning= and UnicastFlood= on a Linux
// bridge port, with the static FDB entry for the guest MAC the launcher's
// record names, and checks them in the kernel, in --check and on a re-run.
func TestPortFlags(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "tap0")
	e.writeConfig("[Interface]\nName=tap0\nIsolated=yes\nLearning=no\nUnicastFlood=no\n")
	e.ns.PlantRecord(t, e.runDir, "tap0", "[Interface]\nGuestMAC=52:54:00:12:34:56\n")
	r := e.run("qemu-ifup", "tap0")
	l := lines(r.stderr)
	tail := []string{
		"qemu-ifup: tap0: attach to virbr0 (bridge from default)",
		"qemu-ifup: tap0: isolated on",
		"qemu-ifup: tap0: learning off",
		"qemu-ifup: tap0: flood off",
		"qemu-ifup: tap0: static fdb entry 52:54:00:12:34:56",
		"qemu-ifup: tap0: promisc on",
		"qemu-ifup: tap0: up",
	}
	if r.code != 0 || len(l) < len(tail) {
		t.Fatalf("qemu-ifup: %v", r)
	}
	if diff := cmp.Diff(tail, l[len(l)-len(tail):]); diff != "" {
		t.Errorf("qemu-ifup stderr (-want +got):\n%s", diff)
	}
	pi, err := e.ns.Handle.LinkGetProtinfo(e.ns.Link(t, "tap0"))
	if err != nil {
		t.Fatal(err)
	}
	if !pi.Isolated || pi.Learning || pi.Flood {
		t.Errorf("kernel reports isolated %v, learning %v, flood %v; want on, off, off", pi.Isolated, pi.Learning, pi.Flood)
	}
	if !staticEntry(t, e, "tap0", "52:54:00:12:34:56") {
		t.Errorf("no static fdb entry for the guest MAC on tap0")
	}
	if r := e.run("qemu-ifup", "tap0"); r.code != 0 || !strings.HasSuffix(r.stderr, "nothing changed\n") {
		t.Errorf("second qemu-ifup: %v", r)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 0 {
		t.Errorf("qemu-ifup --check: %v", r)
	}
	// Someone turns learning back on: --check names it, ifup restores it.
	if err := e.ns.Handle.LinkSetLearning(e.ns.Link(t, "tap0"), true); err != nil {
		t.Fatal(err)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 1 || r.stderr != "qemu-ifup: tap0: differs from the configuration: learning off\n" {
		t.Errorf("qemu-ifup --check with learning on: %v", r)
	}
	if r := e.run("qemu-ifup", "tap0"); r.code != 0 || r.stderr != "qemu-ifup: tap0: learning off\n" {
		t.Errorf("qemu-ifup with learning on: %v", r)
	}
	if r := e.run("qemu-ifdown", "tap0"); r.code != 0 {
		t.Errorf("qemu-ifdown: %v", r)
	}
	if staticEntry(t, e, "tap0", "52:54:00:12:34:56") {
		t.Errorf("static fdb entry left after ifdown")
	}
}

func staticEntry(t *testing.T, e *env, tap, mac string) bool {
	t.Helper()
	ns, err := e.ns.Handle.NeighList(e.ns.Link(t, tap).Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.HardwareAddr.String() == mac && n.State&netlink.NUD_NOARP != 0 {
			return true
		}
	}
	return false
}

// TestOVSMoves moves a tap, with AllowMove=yes, from a Linux bridge to an
// OVS bridge, to another OVS bridge and back to the Linux bridge, and
// refuses each move without it.
func TestOVSMoves(t *testing.T) {
	e, sw := ovsEnv(t)
	sw.AddBridge(t, "ovsbr1")
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "tap0")
	if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup onto virbr0: %v", r)
	}
	steps := []struct {
		bridge string
		want   []string // the lines after the MTU's
		master string   // the kernel's
		ovs    string   // OVS's
		// refused: without AllowMove the move is refused. A tap of a
		// userspace datapath has no kernel master, and OVS is asked
		// about a tap joining a Linux bridge only with AllowMove.
		refused bool
	}{
		{"ovsbr0", []string{"detach from virbr0", "attach to Open vSwitch bridge ovsbr0 (bridge from " + e.config + ":3)"}, "", "ovsbr0", true},
		{"ovsbr1", []string{"move from Open vSwitch bridge ovsbr0 to Open vSwitch bridge ovsbr1 (bridge from " + e.config + ":3)"}, "", "ovsbr1", true},
		{"virbr0", []string{"detach from Open vSwitch bridge ovsbr1", "attach to virbr0 (bridge from " + e.config + ":3)"}, "virbr0", "", false},
	}
	for _, s := range steps {
		before := e.port("tap0")
		if s.refused {
			e.writeConfig("[Interface]\nName=tap0\nBridge=" + s.bridge + "\n")
			r := e.run("qemu-ifup", "tap0")
			if r.code != 1 || !strings.Contains(r.stderr, "(AllowMove=yes in the config moves it)") {
				t.Errorf("qemu-ifup onto %s without AllowMove: %v", s.bridge, r)
			}
			if after := e.port("tap0"); after != before {
				t.Errorf("a refused move changed tap0: %+v -> %+v", before, after)
			}
		}
		e.writeConfig("[Interface]\nName=tap0\nBridge=" + s.bridge + "\nAllowMove=yes\n")
		r := e.run("qemu-ifup", "tap0")
		var got []string
		for _, l := range lines(r.stderr) {
			if !strings.Contains(l, ": mtu ") {
				got = append(got, strings.TrimPrefix(l, "qemu-ifup: tap0: "))
			}
		}
		if diff := cmp.Diff(s.want, got); r.code != 0 || diff != "" {
			t.Errorf("qemu-ifup onto %s: %v; (-want +got):\n%s", s.bridge, r, diff)
		}
		if p := e.port("tap0"); p.Master != s.master {
			t.Errorf("onto %s: kernel master %q, want %q", s.bridge, p.Master, s.master)
		}
		if got := getOVSPort(t, sw, "tap0").Bridge; got != s.ovs {
			t.Errorf("onto %s: OVS bridge %q, want %q", s.bridge, got, s.ovs)
		}
	}
}

// TestOVSDownGoneTap: a tap QEMU already removed is still taken out of
// OVS, which keeps ports whose device vanished.
func TestOVSDownGoneTap(t *testing.T) {
	e, sw := ovsEnv(t)
	e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\n")
	e.ns.AddTap(t, "tap0")
	if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup: %v", r)
	}
	if err := e.ns.Handle.LinkDel(e.ns.Link(t, "tap0")); err != nil {
		t.Fatal(err)
	}
	if got := getOVSPort(t, sw, "tap0").Bridge; got != "ovsbr0" {
		t.Fatalf("OVS dropped the port of a removed tap by itself (%q): nothing to test", got)
	}
	r := e.run("qemu-ifdown", "tap0")
	if r.code != 0 || r.stderr != "qemu-ifdown: tap0: detach from Open vSwitch bridge ovsbr0\n" {
		t.Errorf("qemu-ifdown of a removed tap: %v", r)
	}
	if got := getOVSPort(t, sw, "tap0"); got != (ovsPort{}) {
		t.Errorf("OVS still has tap0: %+v", got)
	}
	if r := e.run("qemu-ifdown", "tap0"); r.code != 0 || r.stderr != "qemu-ifdown: tap0: already gone, nothing to do\n" {
		t.Errorf("second qemu-ifdown: %v", r)
	}
}
