package nstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An OVS is an Open vSwitch of a test's own: ovsdb-server and ovs-vswitchd
// with the userspace datapath (datapath_type=netdev, no kernel module),
// running inside the test's namespace with a private database and run
// directory. It never talks to an Open vSwitch of the machine's.
type OVS struct {
	// Dir holds the database, sockets, pid files and logs.
	Dir string
	// DB is the database's socket in ovs-vsctl's --db syntax.
	DB string

	ns       *NS
	env      []string
	server   *exec.Cmd
	switchd  *exec.Cmd
	serverOK bool
}

// ovsStartTimeout bounds the start of the daemons: generous, the machines
// are small and shared; it only turns a hang into a failure.
const ovsStartTimeout = 60 * time.Second

// RequireOVS skips the test, with one line saying why (or fails it under
// QTH_REQUIRE_INTEGRATION=1), unless Open vSwitch's programs are installed.
func RequireOVS(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	for _, p := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"} {
		RequireTool(t, p, "openvswitch-switch")
	}
}

// ovsSchema is where Debian's openvswitch-common puts the schema.
const ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// StartOVS starts a private Open vSwitch inside the namespace and stops it,
// removing its files, when the test ends (before the namespace goes).
func (n *NS) StartOVS(t testing.TB) *OVS {
	t.Helper()
	RequireOVS(t)
	// Not t.TempDir: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "qth-ovs-")
	if err != nil {
		t.Fatal(err)
	}
	o := &OVS{Dir: dir, DB: "unix:" + filepath.Join(dir, "db.sock"), ns: n}
	// Every OVS program finds its files through these; without OVS_RUNDIR
	// ovs-vswitchd would use /var/run/openvswitch, the machine's.
	o.env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir,
		"OVS_SYSCONFDIR="+dir)
	t.Cleanup(func() { o.stop(t) })

	db := filepath.Join(dir, "conf.db")
	if out, err := o.command("ovsdb-tool", "create", db, ovsSchema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v\n%s", err, out)
	}
	o.server = o.command("ovsdb-server", db, "--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"), "--no-chdir",
		"-vconsole:off", "--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	if err := n.Start(o.server); err != nil {
		t.Fatalf("start ovsdb-server: %v", err)
	}
	o.serverOK = true
	// --retry waits for the server's socket to appear.
	o.Vsctl(t, "--retry", "--no-wait", "init")
	o.switchd = o.command("ovs-vswitchd", o.DB, "--unixctl="+filepath.Join(dir, "ovs-vswitchd.ctl"),
		"--no-chdir", "-vconsole:off", "--log-file="+filepath.Join(dir, "ovs-vswitchd.log"))
	if err := n.Start(o.switchd); err != nil {
		t.Fatalf("start ovs-vswitchd: %v", err)
	}
	// Without --no-wait, ovs-vsctl returns once ovs-vswitchd has applied
	// the change: the switch is running.
	o.Vsctl(t, "set", "Open_vSwitch", ".", "external-ids:qth-test="+n.Name)
	return o
}

func (o *OVS) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = o.env
	// A group of their own, so that the test's signals never reach them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Vsctl runs ovs-vsctl against the private database and returns its
// output without the trailing newline; a failure fails the test.
func (o *OVS) Vsctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.TryVsctl(args...)
	if err != nil {
		t.Fatalf("ovs-vsctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryVsctl is Vsctl returning the error (with ovs-vsctl's stderr).
func (o *OVS) TryVsctl(args ...string) (string, error) {
	a := append([]string{"--db=" + o.DB, fmt.Sprintf("--timeout=%d", int(ovsStartTimeout.Seconds()))}, args...)
	cmd := o.command("ovs-vsctl", a...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := o.ns.Run(cmd); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// AddBridge adds an OVS bridge with the userspace datapath and sets its
// local interface up; the bridge appears in the namespace as a tap-like
// device of the same name.
func (o *OVS) AddBridge(t testing.TB, name string) {
	t.Helper()
	o.Vsctl(t, "add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev")
	l := o.ns.Link(t, name)
	if err := o.ns.Handle.LinkSetUp(l); err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
}

// StopDB stops ovsdb-server, leaving ovs-vswitchd running: the helpers
// must then fail cleanly, as on a host whose database died.
func (o *OVS) StopDB(t testing.TB) {
	t.Helper()
	if !o.serverOK {
		return
	}
	o.serverOK = false
	o.server.Process.Signal(syscall.SIGTERM)
	o.server.Wait()
}

// StopSwitch stops ovs-vswitchd, leaving the database running: a change
// then commits but is never applied, and ovs-vsctl waits for it in vain.
func (o *OVS) StopSwitch(t testing.TB) {
	t.Helper()
	if o.switchd.ProcessState != nil {
		return
	}
	o.switchd.Process.Signal(syscall.SIGTERM)
	o.switchd.Wait()
}

// DBPid is ovsdb-server's process id, for a test that stops it from
// elsewhere at a moment of its choosing.
func (o *OVS) DBPid() string { return strconv.Itoa(o.server.Process.Pid) }

// stop stops both daemons and removes the private directory; on a failed
// test it logs their logs first.
func (o *OVS) stop(t testing.TB) {
	for _, c := range []*exec.Cmd{o.switchd, o.server} {
		if c == nil || c.Process == nil || c.ProcessState != nil {
			continue
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
	}
	if t.Failed() {
		for _, f := range []string{"ovsdb-server.log", "ovs-vswitchd.log"} {
			if b, err := os.ReadFile(filepath.Join(o.Dir, f)); err == nil {
				t.Logf("%s:\n%s", f, b)
			}
		}
	}
	os.RemoveAll(o.Dir)
}
