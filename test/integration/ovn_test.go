package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// ovnEnv is an env on the first hypervisor of an OVN lab (Geneve), with
// logical switch ls0 holding the logical port p1, and the helpers pointed
// at the hypervisor's Open vSwitch and OVN run directory.
func ovnEnv(t testing.TB) (*env, *nstest.OVNLab, *nstest.Hypervisor) {
	t.Helper()
	nstest.RequireRoot(t)
	lab := nstest.NewOVNLab(t, "geneve")
	hv := lab.AddHypervisor(t, "hv1")
	lab.Nbctl(t, "ls-add", "ls0", "--", "lsp-add", "ls0", "p1")
	dir := t.TempDir()
	e := &env{t: t, ns: hv.NS, bin: nstest.Binaries(t), runDir: filepath.Join(dir, "run"),
		config: filepath.Join(dir, "qemu-ifup.conf"),
		vars:   []string{"QEMU_OVS_DB=" + hv.OVS.DB, "OVN_RUNDIR=" + hv.OVS.Dir}}
	return e, lab, hv
}

// TestOVNLogicalPort is qemu-ifup and qemu-ifdown with LogicalPort= on an
// OVN chassis: the dry run shows the identity and the wait; ifup gives the
// tap the MTU the Geneve tunnel leaves, sets the port's identity, returns
// once OVN has installed the port, bound to this chassis; --check agrees;
// ifdown removes the port and OVN unbinds it.
func TestOVNLogicalPort(t *testing.T) {
	e, lab, hv := ovnEnv(t)
	const uuid = "8f3c4a55-1b2c-4d5e-8f90-123456789abc"
	e.writeConfig("[Interface]\nName=tap0\nBridge=br-int\nLogicalPort=p1\nGuestMAC=52:54:00:00:00:01\nVMUUID=" + uuid + "\n")
	mac := e.ns.AddTap(t, "tap0").Attrs().HardwareAddr.String()

	r := e.run("qemu-ifup", "--dry-run", "tap0")
	want := []string{
		"tap0: mtu 1500 -> 1442",
		"tap0: mac " + mac + " -> fe" + mac[2:],
		"tap0: attach to Open vSwitch bridge br-int as OVN logical port p1",
		"tap0: wait for OVN to install logical port p1 (ovn-installed, at most 20s)",
		"tap0: promisc on",
		"tap0: up",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); r.code != 0 || diff != "" {
		t.Fatalf("qemu-ifup --dry-run tap0: %v; stdout (-want +got):\n%s", r, diff)
	}

	r = e.run("qemu-ifup", "tap0")
	if r.code != 0 || !strings.Contains(r.stderr, "qemu-ifup: tap0: wait for OVN to install logical port p1") {
		t.Fatalf("qemu-ifup tap0: %v", r)
	}
	if p := e.port("tap0"); p.MTU != nstest.OVNUnderlayMTU-58 || !p.Up {
		t.Errorf("tap0 = %+v, want MTU %d and up", p, nstest.OVNUnderlayMTU-58)
	}
	for k, v := range map[string]string{"iface-id": "p1", "iface-status": "active", "attached-mac": "52:54:00:00:00:01",
		"vm-uuid": uuid, "ovn-installed": "true"} {
		if got := strings.Trim(hv.Vsctl(t, "get", "Interface", "tap0", "external_ids:"+k), `"`); got != v {
			t.Errorf("tap0: external_ids:%s=%q, want %q", k, got, v)
		}
	}
	chassis := lab.Sbctl(t, "--bare", "--columns=_uuid", "find", "Chassis", "name=hv1")
	if got := lab.Sbctl(t, "--bare", "--columns=chassis", "find", "Port_Binding", "logical_port=p1"); got != chassis {
		t.Errorf("p1 bound to %q, want hv1's %q", got, chassis)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 0 || r.stdout != "tap0: port of br-int as configured\n" {
		t.Errorf("qemu-ifup --check tap0: %v", r)
	}

	if r := e.run("qemu-ifdown", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifdown tap0: %v", r)
	}
	if ports := hv.Vsctl(t, "list-ports", "br-int"); slices.Contains(strings.Fields(ports), "tap0") {
		t.Errorf("tap0 still on br-int after qemu-ifdown: %q", ports)
	}
	lab.Sbctl(t, "--timeout=30", "wait-until", "Port_Binding", "p1", "chassis=[]")
}

// TestOVNLogicalPortRefused: LogicalPort= fails, with one line and the tap
// untouched, on a Linux bridge, on an Open vSwitch bridge that is not
// OVN's integration bridge, and, after OVNWait=, for a port OVN does not
// know or on a chassis whose ovn-controller is gone, every step undone.
func TestOVNLogicalPortRefused(t *testing.T) {
	e, _, hv := ovnEnv(t)
	e.ns.AddBridge(t, "linbr0", 0)
	hv.OVS.AddBridge(t, "ovsbr0")
	e.ns.AddTap(t, "tap0")
	before := e.port("tap0")
	for _, tc := range []struct{ config, want string }{
		{"Bridge=linbr0\nLogicalPort=p1\n",
			"qemu-ifup: tap0: LogicalPort=p1 needs OVN's integration bridge, an Open vSwitch bridge (br-int), and linbr0 is a Linux bridge"},
		{"Bridge=ovsbr0\nLogicalPort=p1\n",
			"qemu-ifup: tap0: LogicalPort=p1 needs OVN's integration bridge br-int; ovsbr0 is another Open vSwitch bridge"},
		{"Bridge=br-int\nLogicalPort=nosuch\nOVNWait=2\n",
			"qemu-ifup: tap0: no ovn-installed within 2s: logical port nosuch is not in the northbound database (the southbound database tcp:10.99.0.1:6642 has no Port_Binding for it) (earlier changes undone)"},
	} {
		e.writeConfig("[Interface]\nName=tap0\n" + tc.config)
		r := e.run("qemu-ifup", "tap0")
		if got := lines(r.stderr); r.code != 1 || len(got) == 0 || got[len(got)-1] != tc.want {
			t.Errorf("qemu-ifup with %q: %v, want last line %q", tc.config, r, tc.want)
		}
		// The undo removes the port without waiting for ovs-vswitchd (it
		// may be why the change failed); ovs-vswitchd hands the tap's
		// promiscuous mode back when it lets go of the port, a moment later.
		if p := settled(e, "tap0", before); p != before {
			t.Errorf("tap0 after the failure = %+v, want %+v", p, before)
		}
		if ports := hv.Vsctl(t, "list-ports", "br-int"); slices.Contains(strings.Fields(ports), "tap0") {
			t.Errorf("tap0 left on br-int: %q", ports)
		}
	}
	hv.StopController(t)
	e.writeConfig("[Interface]\nName=tap0\nBridge=br-int\nLogicalPort=p1\nOVNWait=2\n")
	r := e.run("qemu-ifup", "tap0")
	if r.code != 1 || !strings.Contains(r.stderr, "qemu-ifup: tap0: no ovn-installed within 2s: no ovn-controller runs on this host") {
		t.Errorf("qemu-ifup without ovn-controller: %v", r)
	}
}

// TestOVNNotChassis: on an Open vSwitch that is no OVN chassis, a logical
// port is set all the same, with a warning that nothing waits for it.
func TestOVNNotChassis(t *testing.T) {
	e, sw := ovsEnv(t)
	e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\nLogicalPort=p1\n")
	e.ns.AddTap(t, "tap0")
	r := e.run("qemu-ifup", "tap0")
	warn := "qemu-ifup: tap0: warning: this host is not an OVN chassis (Open vSwitch has no external_ids:ovn-remote): logical port p1 is not waited for"
	if r.code != 0 || !slices.Contains(lines(r.stderr), warn) || strings.Contains(r.stderr, "wait for OVN") {
		t.Errorf("qemu-ifup tap0: %v, want the warning %q and no wait", r, warn)
	}
	if got := sw.Vsctl(t, "get", "Interface", "tap0", "external_ids:iface-id"); got != "p1" {
		t.Errorf("tap0: iface-id %s, want p1", got)
	}
	// The same tap again, left on the bridge (no qemu-ifdown ran), for a
	// VM without LogicalPort=: it must not keep p1's identity, which
	// ovn-controller would bind to that VM.
	e.writeConfig("[Interface]\nName=tap0\nBridge=ovsbr0\n")
	if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup tap0 without LogicalPort=: %v", r)
	}
	if got := sw.Vsctl(t, "--if-exists", "get", "Interface", "tap0", "external_ids:iface-id", "--", "--if-exists", "get", "Interface", "tap0", "external_ids:iface-status"); strings.TrimSpace(got) != "" {
		t.Errorf("tap0 without LogicalPort=: iface-id and iface-status %q, want none", got)
	}
}

// BenchmarkOVNPortUp measures qemu-ifup with LogicalPort= on the OVN lab,
// from its start to its exit, in three parts: the helper's own until
// ovs-vswitchd has added the interface (its log says when), OVN's from
// then until ovn-controller marked it installed
// (external_ids:ovn-installed-ts), and the helper's again until it exits
// (noticing the mark, the last steps). The same tap on br-int without
// LogicalPort= (no wait) is the baseline. It reports medians, in ms. Not
// part of make test:
//
//	go test -run '^$' -bench OVNPortUp -benchtime 30x ./test/integration
func BenchmarkOVNPortUp(b *testing.B) {
	e, _, hv := ovnEnv(b)
	e.ns.AddTap(b, "tap0")
	b.Run("ovs-port", func(b *testing.B) {
		e.writeConfig("[Interface]\nName=tap0\nBridge=br-int\n")
		benchIfup(b, e, nil)
	})
	b.Run("logical-port", func(b *testing.B) {
		e.writeConfig("[Interface]\nName=tap0\nBridge=br-int\nLogicalPort=p1\n")
		benchIfup(b, e, hv)
	})
}

// benchIfup runs qemu-ifup and qemu-ifdown on tap0 b.N times, timing
// qemu-ifup; with hv, it splits the time at what hv's logs and database
// say.
func benchIfup(b *testing.B, e *env, hv *nstest.Hypervisor) {
	var total, before, ovn, after []time.Duration
	for range b.N {
		start := time.Now()
		if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
			b.Fatalf("qemu-ifup: %v", r)
		}
		end := time.Now()
		total = append(total, end.Sub(start))
		if hv != nil {
			added, installed := ovnTimes(b, hv, "tap0")
			before, ovn, after = append(before, added.Sub(start)), append(ovn, installed.Sub(added)), append(after, end.Sub(installed))
		}
		b.StopTimer()
		if r := e.run("qemu-ifdown", "tap0"); r.code != 0 {
			b.Fatalf("qemu-ifdown: %v", r)
		}
		b.StartTimer()
	}
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(median(total), "ms-total")
	if hv != nil {
		b.ReportMetric(median(before), "ms-helper-before")
		b.ReportMetric(median(ovn), "ms-ovn")
		b.ReportMetric(median(after), "ms-helper-after")
	}
}

// ovnTimes are when ovs-vswitchd added port's interface, as its log says
// (to the millisecond), and when ovn-controller marked it installed.
func ovnTimes(b *testing.B, hv *nstest.Hypervisor, port string) (added, installed time.Time) {
	ts, err := strconv.ParseInt(strings.Trim(hv.Vsctl(b, "get", "Interface", port, "external_ids:ovn-installed-ts"), `"`), 10, 64)
	if err != nil {
		b.Fatalf("ovn-installed-ts of %s: %v", port, err)
	}
	log, err := os.ReadFile(filepath.Join(hv.OVS.Dir, "ovs-vswitchd.log"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if stamp, _, ok := strings.Cut(line, "|"); ok && strings.HasSuffix(line, "added interface "+port+" on port "+line[strings.LastIndex(line, " ")+1:]) {
			if added, err = time.Parse("2006-01-02T15:04:05.000Z", stamp); err != nil {
				b.Fatalf("ovs-vswitchd.log: %q: %v", line, err)
			}
		}
	}
	if added.IsZero() {
		b.Fatalf("ovs-vswitchd.log does not say it added %s", port)
	}
	return added, time.UnixMilli(ts)
}

// settled returns the port's state once it is want, or as it is after 10 s.
func settled(e *env, name string, want nstest.Port) nstest.Port {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := e.port(name)
		if p == want || time.Now().After(deadline) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
}
