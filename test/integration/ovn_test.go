package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
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
		if p := e.port("tap0"); p != before {
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
}

// BenchmarkOVNPortUp measures qemu-ifup with LogicalPort= on the OVN lab,
// from its start to its exit, and splits it at the lines it prints: OVN's
// share runs from the attach (the port in the database and opened by
// ovs-vswitchd) to the end of the wait for ovn-installed; the rest is the
// helper's own. It reports the medians. Not part of make test:
//
//	go test -run '^$' -bench OVNPortUp -benchtime 20x ./test/integration
func BenchmarkOVNPortUp(b *testing.B) {
	e, _, _ := ovnEnv(b)
	e.writeConfig("[Interface]\nName=tap0\nBridge=br-int\nLogicalPort=p1\n")
	e.ns.AddTap(b, "tap0")
	var total, helper, ovn []time.Duration
	for range b.N {
		t, o := timeIfup(b, e)
		total, helper, ovn = append(total, t), append(helper, t-o), append(ovn, o)
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
	b.ReportMetric(median(helper), "ms-helper")
	b.ReportMetric(median(ovn), "ms-ovn")
}

// timeIfup runs qemu-ifup tap0 and returns its whole time and OVN's share
// of it, from when it printed the attach until it printed the wait.
func timeIfup(b *testing.B, e *env) (total, ovn time.Duration) {
	cmd := e.cmd("qemu-ifup", "tap0")
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = w
	start := time.Now()
	if err := e.ns.Start(cmd); err != nil {
		b.Fatal(err)
	}
	w.Close()
	var attached, installed time.Time
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.Contains(line, ": attach to "):
			attached = time.Now()
		case strings.Contains(line, ": wait for OVN"):
			installed = time.Now()
		default:
			out = append(out, line)
		}
	}
	r.Close()
	if err := cmd.Wait(); err != nil || attached.IsZero() || installed.IsZero() {
		b.Fatalf("qemu-ifup tap0: %v\n%s", err, strings.Join(out, "\n"))
	}
	return time.Since(start), installed.Sub(attached)
}
