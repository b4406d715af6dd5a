package nstest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// An OVNLab is OVN across hosts, in network namespaces: a central node
// (the northbound and southbound databases and ovn-northd) and
// hypervisors, each with its own Open vSwitch (userspace datapath) and
// ovn-controller, joined by an underlay of veths on a Linux bridge in the
// central namespace. Every process and file is the lab's own; it never
// talks to an Open vSwitch or OVN of the machine's.
type OVNLab struct {
	// Central holds the databases and ovn-northd.
	Central *NS
	// NB and SB are the databases' sockets in ovn-nbctl's and
	// ovn-sbctl's --db syntax, for commands run in Central; Remote is
	// the southbound database as the hypervisors reach it.
	NB, SB, Remote string
	// Encap is the tunnel type: "geneve" or "vxlan".
	Encap string
	// Hypervisors are the chassis, in the order added.
	Hypervisors []*Hypervisor

	dir   string
	env   []string
	procs []*exec.Cmd
}

// A Hypervisor is one chassis of an OVNLab.
type Hypervisor struct {
	*NS
	// OVS is its Open vSwitch; br-int is OVN's integration bridge on it.
	OVS *OVS
	// Name is its system-id (the chassis' name in the southbound
	// database); IP its tunnel endpoint on br-phy.
	Name, IP string
	// Env is what a program run on it needs to find its Open vSwitch
	// and OVN: OVS_* and OVN_* pointing at its private directory.
	Env []string

	controller *exec.Cmd
	lab        *OVNLab
}

// The lab's underlay: a /24 of its own, the central node first.
const (
	underlayBridge = "underlay"
	underlayNet    = "10.99.0."
	centralIP      = underlayNet + "1"
	// OVNUnderlayMTU is the MTU of the underlay's links.
	OVNUnderlayMTU = 1500
)

// RequireOVN skips the test (or fails it under QTH_REQUIRE_INTEGRATION=1)
// unless Open vSwitch, OVN's central and host programs and iputils' ping
// are installed.
func RequireOVN(t testing.TB) {
	t.Helper()
	RequireOVS(t)
	for _, p := range []string{"ovn-northd", "ovn-nbctl", "ovn-sbctl"} {
		RequireTool(t, p, "ovn-central")
	}
	RequireTool(t, "ovn-controller", "ovn-host")
	// Ping's -M do (Don't Fragment) is iputils'.
	RequireTool(t, "ping", "iputils-ping")
}

// NewOVNLab starts the central node with the tunnel type encap ("geneve"
// or "vxlan"); AddHypervisor adds chassis. Everything stops, and every
// namespace goes, when the test ends.
func NewOVNLab(t testing.TB, encap string) *OVNLab {
	t.Helper()
	RequireOVN(t)
	dir, err := os.MkdirTemp("", "qth-ovn-")
	if err != nil {
		t.Fatal(err)
	}
	l := &OVNLab{Encap: encap, dir: dir, Central: New(t)}
	l.env = ovnEnv(dir)
	l.NB = "unix:" + filepath.Join(dir, "nb.sock")
	l.SB = "unix:" + filepath.Join(dir, "sb.sock")
	l.Remote = "tcp:" + centralIP + ":6642"
	// Registered after New's: runs before the namespace goes.
	t.Cleanup(func() { l.stop(t) })

	br := l.Central.AddBridge(t, underlayBridge, 0)
	addAddr(t, l.Central, br, centralIP+"/24")
	for _, db := range []struct{ name, schema string }{
		{"nb", "/usr/share/ovn/ovn-nb.ovsschema"},
		{"sb", "/usr/share/ovn/ovn-sb.ovsschema"},
	} {
		file := filepath.Join(dir, db.name+".db")
		if out, err := l.command("ovsdb-tool", "create", file, db.schema).CombinedOutput(); err != nil {
			t.Fatalf("ovsdb-tool create %s: %v\n%s", file, err, out)
		}
		args := []string{file, "--remote=punix:" + filepath.Join(dir, db.name+".sock"),
			"--unixctl=" + filepath.Join(dir, db.name+".ctl")}
		if db.name == "sb" {
			args = append(args, "--remote=ptcp:6642:"+centralIP)
		}
		l.start(t, "ovsdb-server", append(args, "--no-chdir", "-vconsole:off",
			"--log-file="+filepath.Join(dir, db.name+".log"))...)
		// A daemon in the foreground listens a moment after it starts;
		// ovn-nbctl and ovn-northd do not wait for a socket that is not
		// there yet.
		waitSocket(t, filepath.Join(dir, db.name+".sock"))
	}
	l.start(t, "ovn-northd", "--ovnnb-db="+l.NB, "--ovnsb-db="+l.SB,
		"--unixctl="+filepath.Join(dir, "northd.ctl"), "--no-chdir", "-vconsole:off",
		"--log-file="+filepath.Join(dir, "northd.log"))
	// --wait=sb returns once ovn-northd has carried the change over.
	l.Nbctl(t, "--timeout=60", "--wait=sb", "sync")
	return l
}

// ovnEnv points Open vSwitch's and OVN's programs at dir for everything.
func ovnEnv(dir string) []string {
	env := os.Environ()
	for _, v := range []string{"OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR",
		"OVN_RUNDIR", "OVN_DBDIR", "OVN_LOGDIR", "OVN_SYSCONFDIR"} {
		env = append(env, v+"="+dir)
	}
	return env
}

func (l *OVNLab) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = l.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// start starts a daemon of the central node in the foreground, as a child
// the lab stops.
func (l *OVNLab) start(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := l.command(name, args...)
	if err := l.Central.Start(cmd); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	l.procs = append(l.procs, cmd)
}

// waitSocket waits until a unix socket exists at path, for at most 30 s.
func waitSocket(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err == nil && fi.Mode()&os.ModeSocket != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket at %s after 30 s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Nbctl runs ovn-nbctl against the northbound database and returns its
// output without the trailing newline; a failure fails the test.
func (l *OVNLab) Nbctl(t testing.TB, args ...string) string {
	t.Helper()
	return l.ctl(t, "ovn-nbctl", l.NB, args...)
}

// Sbctl is Nbctl for ovn-sbctl and the southbound database.
func (l *OVNLab) Sbctl(t testing.TB, args ...string) string {
	t.Helper()
	return l.ctl(t, "ovn-sbctl", l.SB, args...)
}

func (l *OVNLab) ctl(t testing.TB, prog, db string, args ...string) string {
	t.Helper()
	a := append([]string{"--db=" + db}, args...)
	if len(args) == 0 || !strings.HasPrefix(args[0], "--timeout") {
		// Generous: it only turns a hang into a failure.
		a = append([]string{"--timeout=60"}, a...)
	}
	cmd := l.command(prog, a...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := l.Central.Run(cmd); err != nil {
		t.Fatalf("%s %s: %v: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSuffix(out.String(), "\n")
}

// AddHypervisor adds a chassis called name: a namespace whose uplink is a
// veth to the central node's underlay bridge, an Open vSwitch with br-phy
// holding the tunnel endpoint, and ovn-controller, which creates br-int.
// It returns once br-int exists and the chassis has registered.
func (l *OVNLab) AddHypervisor(t testing.TB, name string) *Hypervisor {
	t.Helper()
	i := len(l.Hypervisors) + 1
	h := &Hypervisor{NS: New(t), Name: name, IP: underlayNet + strconv.Itoa(10+i), lab: l}
	l.Hypervisors = append(l.Hypervisors, h)
	// Registered after the namespace's: runs before it goes, and after
	// the OVS's (registered below), so ovn-controller stops first.
	h.OVS = h.StartOVS(t)
	t.Cleanup(func() { h.stopController(t) })
	h.Env = ovnEnv(h.OVS.Dir)
	l.underlay(t, h, i)

	// The tunnel endpoint sits on an OVS bridge of the userspace
	// datapath, which sends the encapsulated packets through it.
	mac := h.Link(t, "uplink").Attrs().HardwareAddr.String()
	h.OVS.Vsctl(t, "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
		"fail-mode=standalone", "other_config:hwaddr=\""+mac+"\"", "--", "add-port", "br-phy", "uplink")
	phy := h.Link(t, "br-phy")
	if err := h.Handle.LinkSetUp(phy); err != nil {
		t.Fatalf("set br-phy up in %s: %v", name, err)
	}
	addAddr(t, h.NS, phy, h.IP+"/24")
	h.OVS.Vsctl(t, "set", "Open_vSwitch", ".",
		"external_ids:system-id="+name,
		"external_ids:ovn-remote="+l.Remote,
		"external_ids:ovn-encap-type="+l.Encap,
		"external_ids:ovn-encap-ip="+h.IP,
		"external_ids:ovn-bridge-datapath-type=netdev")
	h.controller = exec.Command("ovn-controller", h.OVS.DB, "--no-chdir", "-vconsole:off",
		"--pidfile="+filepath.Join(h.OVS.Dir, "ovn-controller.pid"),
		"--log-file="+filepath.Join(h.OVS.Dir, "ovn-controller.log"))
	h.controller.Env = h.Env
	h.controller.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.Start(h.controller); err != nil {
		t.Fatalf("start ovn-controller in %s: %v", name, err)
	}
	h.OVS.Vsctl(t, "--retry", "wait-until", "Bridge", "br-int")
	l.Sbctl(t, "wait-until", "Chassis", name)
	return h
}

// underlay joins h to the central node's bridge: a veth "uplink" in h,
// "hvI" on the bridge.
func (l *OVNLab) underlay(t testing.TB, h *Hypervisor, i int) {
	t.Helper()
	peer := "hv" + strconv.Itoa(i)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: peer, MTU: OVNUnderlayMTU}, PeerName: "uplink"}
	if err := l.Central.Handle.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s: %v", peer, err)
	}
	up := l.Central.Link(t, "uplink")
	if err := l.Central.Handle.LinkSetNsFd(up, int(h.ns)); err != nil {
		t.Fatalf("move uplink to %s: %v", h.Name, err)
	}
	br := l.Central.Link(t, underlayBridge)
	c := l.Central.Link(t, peer)
	if err := l.Central.Handle.LinkSetMaster(c, br); err != nil {
		t.Fatalf("attach %s to %s: %v", peer, underlayBridge, err)
	}
	if err := l.Central.Handle.LinkSetUp(c); err != nil {
		t.Fatalf("set %s up: %v", peer, err)
	}
	u := h.Link(t, "uplink")
	if err := h.Handle.LinkSetMTU(u, OVNUnderlayMTU); err != nil {
		t.Fatalf("set mtu of uplink in %s: %v", h.Name, err)
	}
	if err := h.Handle.LinkSetUp(u); err != nil {
		t.Fatalf("set uplink up in %s: %v", h.Name, err)
	}
}

// Meshed pings every other hypervisor's tunnel endpoint from each: the
// userspace datapath resolves a remote endpoint's MAC on the first packet
// and drops that packet, which must not be a test's.
func (l *OVNLab) Meshed(t testing.TB) {
	t.Helper()
	for _, a := range l.Hypervisors {
		for _, b := range l.Hypervisors {
			if a == b {
				continue
			}
			if out, err := a.Ping(b.IP, 56, 10); err != nil {
				t.Fatalf("underlay ping %s -> %s: %v\n%s", a.Name, b.Name, err, out)
			}
		}
	}
}

// Ping pings addr from the hypervisor, with size bytes of ICMP data (an
// IP packet of size+28 bytes) and Don't Fragment set, five times a second
// until one reply comes back or seconds have passed; it returns ping's
// output.
func (h *Hypervisor) Ping(addr string, size, seconds int) (string, error) {
	cmd := exec.Command("ping", "-n", "-M", "do", "-s", strconv.Itoa(size), "-c", "1", "-i", "0.2",
		"-W", "1", "-w", strconv.Itoa(seconds), addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := h.Run(cmd)
	return out.String(), err
}

// Vsctl runs ovs-vsctl on the hypervisor's Open vSwitch.
func (h *Hypervisor) Vsctl(t testing.TB, args ...string) string {
	t.Helper()
	return h.OVS.Vsctl(t, args...)
}

// AddPort adds an OVS internal port called name on br-int bound to the
// logical port lsp, with mac and the address cidr, inside the
// hypervisor's namespace: a host-side stand-in for a guest. It returns
// once OVN has installed the port's flows.
func (h *Hypervisor) AddPort(t testing.TB, name, lsp, mac, cidr string, mtu int) {
	t.Helper()
	h.Vsctl(t, "add-port", "br-int", name, "--", "set", "Interface", name, "type=internal",
		"mtu_request="+strconv.Itoa(mtu), "external_ids:iface-id="+lsp, "--", "set", "Interface", name,
		"mac=\""+mac+"\"")
	l := h.Link(t, name)
	addAddr(t, h.NS, l, cidr)
	if err := h.Handle.LinkSetUp(l); err != nil {
		t.Fatalf("set %s up in %s: %v", name, h.Name, err)
	}
	h.Vsctl(t, "wait-until", "Interface", name, "external_ids:ovn-installed=true")
}

// StopController stops ovn-controller, leaving Open vSwitch running: a
// chassis whose controller died.
func (h *Hypervisor) StopController(t testing.TB) { h.stopController(t) }

func (h *Hypervisor) stopController(t testing.TB) {
	if stopProcess(h.controller) && t.Failed() {
		logFile(t, filepath.Join(h.OVS.Dir, "ovn-controller.log"))
	}
}

// stop stops the central daemons, newest first, and removes their files.
func (l *OVNLab) stop(t testing.TB) {
	for i := len(l.procs) - 1; i >= 0; i-- {
		stopProcess(l.procs[i])
	}
	if t.Failed() {
		for _, f := range []string{"northd.log", "sb.log", "nb.log"} {
			logFile(t, filepath.Join(l.dir, f))
		}
	}
	os.RemoveAll(l.dir)
}

// stopProcess ends a daemon started in the foreground: SIGTERM, SIGKILL
// after 10 s. It reports whether there was one to stop.
func stopProcess(c *exec.Cmd) bool {
	if c == nil || c.Process == nil || c.ProcessState != nil {
		return false
	}
	c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		<-done
	}
	return true
}

func logFile(t testing.TB, path string) {
	if b, err := os.ReadFile(path); err == nil {
		t.Logf("%s:\n%s", filepath.Base(path), b)
	}
}

func addAddr(t testing.TB, n *NS, l netlink.Link, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Handle.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s to %s in %s: %v", cidr, l.Attrs().Name, n.Name, err)
	}
}
