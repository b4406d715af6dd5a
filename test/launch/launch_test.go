package launch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// These tests run the built qemu-launch with Debian's stock QEMU under TCG
// (-accel tcg: nested KVM does not work on the build machines).

const qemu = "qemu-system-x86_64"

// hangGuard bounds every wait, so that a broken launcher fails the test
// instead of hanging it. It is not a timing assertion.
const hangGuard = 2 * time.Minute

func requireQEMU(t *testing.T) {
	t.Helper()
	nstest.RequireRoot(t)
	nstest.RequireTool(t, qemu, "qemu-system-x86")
}

// A launch is one qemu-launch process under test.
type launch struct {
	t      *testing.T
	cmd    *exec.Cmd
	notify *net.UnixConn // the NOTIFY_SOCKET qemu-launch reports to
	stderr bytes.Buffer
	stdout bytes.Buffer
	done   chan struct{}
	runDir string
	ns     *nstest.NS
}

// start starts qemu-launch with args, inside ns when ns is not nil, with
// NOTIFY_SOCKET pointing at a socket the test reads and its own run dir.
func start(t *testing.T, ns *nstest.NS, env []string, args ...string) *launch {
	t.Helper()
	bin := nstest.Binaries(t)
	dir := t.TempDir()
	l := &launch{t: t, done: make(chan struct{}), runDir: filepath.Join(dir, "run"), ns: ns}
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	l.notify = conn
	l.cmd = exec.Command(filepath.Join(bin, "qemu-launch"), args...)
	l.cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=" + sock,
		"QEMU_TAP_HELPERS_RUNDIR=" + l.runDir, "QEMU_IFUP_CONFIG=" + filepath.Join(dir, "none.conf")}, env...)
	l.cmd.Stdout, l.cmd.Stderr = &l.stdout, &l.stderr
	// A process group of its own, as a shell's job: the terminal's
	// signals go to the whole group.
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if ns != nil {
		err = ns.Start(l.cmd)
	} else {
		err = l.cmd.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() { l.cmd.Wait(); close(l.done) }()
	t.Cleanup(func() {
		// A failed test leaves nothing running: QEMU follows its
		// launcher (PR_SET_PDEATHSIG).
		l.cmd.Process.Kill()
		<-l.done
	})
	return l
}

// waitFor reads what qemu-launch tells systemd until a message holds
// want, and returns that message.
func (l *launch) waitFor(want string) string {
	l.t.Helper()
	end := time.Now().Add(hangGuard)
	buf := make([]byte, 4096)
	for {
		// Short reads, so that a launcher that exited fails the test at
		// once, with its status, rather than at the guard.
		l.notify.SetReadDeadline(time.Now().Add(time.Second))
		n, err := l.notify.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(end) {
			select {
			case <-l.done:
				l.t.Fatalf("qemu-launch exited (%v) before saying %q\nstderr:\n%s", l.cmd.ProcessState, want, l.stderr.String())
			default:
				continue
			}
		}
		if err != nil {
			l.t.Fatalf("waiting for %q from qemu-launch: %v\nstderr:\n%s", want, err, l.stderr.String())
		}
		if msg := string(buf[:n]); strings.Contains(msg, want) {
			return msg
		}
	}
}

// wait waits for qemu-launch to exit and returns its status.
func (l *launch) wait() int {
	l.t.Helper()
	select {
	case <-l.done:
	case <-time.After(hangGuard):
		l.t.Fatalf("qemu-launch still runs after %s\nstderr:\n%s", hangGuard, l.stderr.String())
	}
	return l.cmd.ProcessState.ExitCode()
}

func (l *launch) signal(sig os.Signal) {
	l.t.Helper()
	if err := l.cmd.Process.Signal(sig); err != nil {
		l.t.Fatal(err)
	}
}

// qemuPid is the pid of qemu-launch's child.
func (l *launch) qemuPid() int {
	l.t.Helper()
	tids, err := sched.Threads(l.cmd.Process.Pid)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, tid := range tids {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", l.cmd.Process.Pid, tid))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				return pid
			}
		}
	}
	l.t.Fatalf("qemu-launch %d has no child", l.cmd.Process.Pid)
	return 0
}

// threadsByName maps the thread names of pid (-name ...,debug-threads=on
// names vCPU threads "CPU N/TCG") to their ids.
func threadsByName(t *testing.T, pid int) map[string]int {
	t.Helper()
	tids, err := sched.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, tid := range tids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/comm", pid, tid))
		if err != nil {
			t.Fatal(err)
		}
		m[strings.TrimSpace(string(comm))+"#"+strconv.Itoa(tid)] = tid
	}
	return m
}

func vcpuThread(t *testing.T, pid, n int) int {
	t.Helper()
	prefix := fmt.Sprintf("CPU %d/TCG#", n)
	for name, tid := range threadsByName(t, pid) {
		if strings.HasPrefix(name, prefix) {
			return tid
		}
	}
	t.Fatalf("QEMU %d has no thread named CPU %d/TCG", pid, n)
	return 0
}

func requireCPUs(t *testing.T, cpus ...int) {
	t.Helper()
	online, err := cpuset.Online()
	if err != nil {
		t.Fatal(err)
	}
	if want := cpuset.Of(cpus...); !want.Minus(online).Empty() {
		t.Fatalf("test needs CPUs %s online; this host has %s", want, online)
	}
}

// TestSeed is the acceptance test on a 2-CPU machine: the seed's
// command, with --cpus 0,1 for taskset -c 2,3, masks 0x1/0x2 for 0x4/0x8,
// -accel tcg for -enable-kvm, the guest kept paused (-S, no kernel or
// disk needed) and the tap left to the helpers: the pinning, priorities
// and memory locking it asks for, on stock QEMU, and its tap on br0.
func TestSeed(t *testing.T) {
	requireQEMU(t)
	requireCPUs(t, 0, 1)
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	l := start(t, ns, nil, "--cpus", "0,1", "--bridge", "br0", "--shutdown-timeout", "1s", qemu,
		"-accel", "tcg", "-m", "512", "-realtime", "mlock=on", "-smp", "2",
		"-name", "rt,process=rt-kvm,debug-threads=on", "-no-reboot", "-nographic",
		"-vcpu", "0,affinity=0x1,prio=0", "-vcpu", "1,affinity=0x2,prio=80",
		"-device", "e1000,netdev=vm0", "-netdev", "tap,id=vm0", "-S")
	l.waitFor("READY=1")
	pid := l.qemuPid()

	v0, err := sched.Read(pid, vcpuThread(t, pid, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !v0.CPUs.Equal(cpuset.Of(0)) || v0.Policy != sched.Other || v0.Prio != 0 {
		t.Errorf("vCPU 0: %v, want CPUs 0 under SCHED_OTHER", v0)
	}
	v1, err := sched.Read(pid, vcpuThread(t, pid, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !v1.CPUs.Equal(cpuset.Of(1)) || v1.Policy != sched.FIFO || v1.Prio != 80 {
		t.Errorf("vCPU 1: %v, want CPUs 1 under SCHED_FIFO 80", v1)
	}
	for name, tid := range threadsByName(t, pid) {
		th, err := sched.Read(pid, tid)
		if err != nil {
			t.Fatal(err)
		}
		if out := th.CPUs.Minus(cpuset.Of(0, 1)); !out.Empty() {
			t.Errorf("thread %s: %v, outside --cpus 0,1", name, th)
		}
	}
	if kb, err := nstest.LockedKB(pid); err != nil || kb < 512*1024 {
		t.Errorf("QEMU's VmLck = %d kB (%v), want the guest's 512 MiB locked with -realtime mlock=on", kb, err)
	}
	if got := ns.MasterName(t, ns.Link(t, "rt-vm0")); got != "br0" {
		t.Errorf("rt-vm0: master %q, want br0", got)
	}
	// systemd's variables are qemu-launch's alone.
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(environ, []byte("NOTIFY_SOCKET=")) {
		t.Error("QEMU inherited NOTIFY_SOCKET")
	}
	l.signal(syscall.SIGTERM)
	if code := l.wait(); code != 0 {
		t.Errorf("exit status %d, want 0 (QEMU's after SIGTERM)\nstderr:\n%s", code, l.stderr.String())
	}
}

// --cpus alone confines every QEMU thread, created before or after start,
// with no taskset.
func TestCPUsConfinesEveryThread(t *testing.T) {
	requireQEMU(t)
	requireCPUs(t, 1)
	l := start(t, nil, nil, "--cpus", "1", "--shutdown-timeout", "1s", qemu, "-accel", "tcg", "-display", "none", "-nodefaults",
		"-m", "64", "-smp", "2", "-S")
	l.waitFor("READY=1")
	pid := l.qemuPid()
	n := 0
	for name, tid := range threadsByName(t, pid) {
		th, err := sched.Read(pid, tid)
		if err != nil {
			t.Fatal(err)
		}
		if !th.CPUs.Equal(cpuset.Of(1)) {
			t.Errorf("thread %s: %v, want CPUs 1 only", name, th)
		}
		n++
	}
	if n < 3 { // main loop, two vCPUs (and RCU, workers)
		t.Errorf("QEMU has %d threads, want at least 3", n)
	}
	// qemu-launch's own threads are not confined.
	if th, err := sched.Read(l.cmd.Process.Pid, l.cmd.Process.Pid); err != nil || th.CPUs.Equal(cpuset.Of(1)) {
		t.Errorf("qemu-launch: %v, %v: its own affinity should stay", th, err)
	}
	l.signal(syscall.SIGTERM)
	l.wait()
}

func TestCPUsNotOnline(t *testing.T) {
	online, err := cpuset.Online()
	if err != nil {
		t.Fatal(err)
	}
	cpus := online.CPUs()
	bad := cpus[len(cpus)-1] + 1
	if bad < 7 {
		bad = 7
	}
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--cpus", strconv.Itoa(bad), qemu, "-accel", "tcg")
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("qemu-launch: --cpus %d: CPU %d not online (online: %s)\n", bad, bad, online)
	if cmd.ProcessState.ExitCode() != 1 || string(out) != want {
		t.Errorf("qemu-launch --cpus %d: %v, output %q; want exit 1 and %q", bad, err, out, want)
	}
}

// SIGTERM (SIGINT, SIGHUP) asks the guest to power down; a guest that
// does not (here no guest at all) gets SIGTERM after --shutdown-timeout.
// QEMU exits 0 on SIGTERM, and so does qemu-launch.
func TestSignalPowersDownThenTerminates(t *testing.T) {
	requireQEMU(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGTERM, "terminated"}, {syscall.SIGINT, "interrupt"}, {syscall.SIGHUP, "hangup"}} {
		t.Run(tc.name, func(t *testing.T) {
			l := start(t, nil, nil, "-v", "--shutdown-timeout", "1s", qemu, "-accel", "tcg", "-display", "none",
				"-nodefaults", "-m", "64")
			l.waitFor("READY=1")
			pid := l.qemuPid()
			l.signal(tc.sig)
			l.waitFor("STOPPING=1")
			code := l.wait()
			stderr := l.stderr.String()
			for _, want := range []string{
				"qemu-launch: " + tc.name + ": asked the guest to power down (QMP system_powerdown); SIGTERM in 1s\n",
				"qemu-launch: QEMU event POWERDOWN\n",
				"qemu-launch: QEMU still runs: sent SIGTERM to QEMU; SIGKILL in 10s\n",
				// QEMU writes its message in pieces, which the
				// launcher's lines may separate.
				" terminating on signal 15 from pid ",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if code != 0 {
				t.Errorf("exit status %d, want QEMU's 0", code)
			}
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("QEMU %d still runs", pid)
			}
		})
	}
}

// QEMU refusing an argument at once: its message reaches the user, alone,
// and qemu-launch exits with QEMU's status.
func TestBadArgumentExitStatus(t *testing.T) {
	requireQEMU(t)
	for _, arg := range [][]string{{"-bogus"}, {"-device", "no-such-device"}} {
		l := start(t, nil, nil, append([]string{qemu, "-accel", "tcg", "-display", "none", "-nodefaults"}, arg...)...)
		if code := l.wait(); code != 1 {
			t.Errorf("%s: exit status %d, want QEMU's 1", arg, code)
		}
		stderr := l.stderr.String()
		if !strings.HasPrefix(stderr, "qemu-system-x86_64: "+strings.Join(arg, " ")+": ") ||
			strings.Contains(stderr, "qemu-launch:") {
			t.Errorf("%s: stderr %q: want QEMU's message alone", arg, stderr)
		}
	}
}

// tapArgs is a VM named tw with one e1000 per netdev id, each on a tap
// without script=.
func tapArgs(ids ...string) []string {
	a := []string{qemu, "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "64", "-name", "tw"}
	for _, id := range ids {
		a = append(a, "-netdev", "tap,id="+id, "-device", "e1000,netdev="+id)
	}
	return a
}

func (l *launch) record(ifname string) string {
	dir := filepath.Join(l.runDir, "*")
	if l.ns != nil {
		dir = l.ns.RunDir(l.t, l.runDir)
	}
	found, _ := filepath.Glob(filepath.Join(dir, ifname+".conf"))
	if len(found) != 1 {
		return ""
	}
	data, err := os.ReadFile(found[0])
	if err != nil {
		return ""
	}
	return string(data)
}

// Taps without script= get the helpers installed next to qemu-launch, a
// name derived from the VM and the netdev, and the bridge asked for each;
// QEMU's own down-script run removes the records.
func TestTapWiring(t *testing.T) {
	requireQEMU(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	ns.AddBridge(t, "br-b", 0)
	// n2 names the helper by a link, as /etc/qemu-ifup does when linked
	// to it: it is still the launcher's to give a record.
	link := filepath.Join(t.TempDir(), "qemu-ifup")
	if err := os.Symlink(filepath.Join(nstest.Binaries(t), "qemu-ifup"), link); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-v", "--bridge", "br-a", "--bridge", "n1=br-b", "--bridge", "n2=br-b", "--shutdown-timeout", "1s"},
		tapArgs("n0", "n1")...)
	args = append(args, "-netdev", "tap,id=n2,script="+link, "-device", "e1000,netdev=n2")
	l := start(t, ns, nil, args...)
	l.waitFor("READY=1")
	for tap, br := range map[string]string{"tw-n0": "br-a", "tw-n1": "br-b", "tw-n2": "br-b"} {
		link := ns.Link(t, tap)
		if got := ns.MasterName(t, link); got != br {
			t.Errorf("%s: master %q, want %q", tap, got, br)
		}
		if rec := l.record(tap); !strings.Contains(rec, "Bridge="+br+"\n") {
			t.Errorf("%s: record %q, want Bridge=%s", tap, rec, br)
		}
	}
	l.signal(syscall.SIGTERM)
	if code := l.wait(); code != 0 {
		t.Errorf("exit status %d, want 0\nstderr:\n%s", code, l.stderr.String())
	}
	for _, tap := range []string{"tw-n0", "tw-n1", "tw-n2"} {
		if ns.Exists(tap) {
			t.Errorf("%s still exists", tap)
		}
		if rec := l.record(tap); rec != "" {
			t.Errorf("%s: record left behind: %q", tap, rec)
		}
	}
	if strings.Contains(l.stderr.String(), "did not run its down-script") {
		t.Errorf("qemu-launch ran the down-script QEMU had run:\n%s", l.stderr.String())
	}
}

// QEMU killed with SIGKILL runs no down-script: qemu-launch runs it, and
// exits 128+9.
func TestSIGKILLedQEMUCleanup(t *testing.T) {
	requireQEMU(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	l := start(t, ns, nil, append([]string{"-v", "--bridge", "br-a"}, tapArgs("n0")...)...)
	l.waitFor("READY=1")
	if got := ns.MasterName(t, ns.Link(t, "tw-n0")); got != "br-a" {
		t.Fatalf("tw-n0: master %q, want br-a", got)
	}
	if err := syscall.Kill(l.qemuPid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := l.wait(); code != 128+9 {
		t.Errorf("exit status %d, want 137\nstderr:\n%s", code, l.stderr.String())
	}
	if rec := l.record("tw-n0"); rec != "" {
		t.Errorf("record left behind: %q", rec)
	}
	if ns.Exists("tw-n0") {
		t.Error("tw-n0 still exists")
	}
	if want := "qemu-launch: tw-n0: QEMU did not run its down-script; running "; !strings.Contains(l.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, l.stderr.String())
	}
}

// A QEMU refusing an argument after the launcher wrote its tap records:
// the records go, QEMU's message is the only one, its status is ours.
func TestBadArgumentWithTap(t *testing.T) {
	requireQEMU(t)
	ns := nstest.New(t)
	l := start(t, ns, nil, append(tapArgs("n0"), "-bogus")...)
	if code := l.wait(); code != 1 {
		t.Errorf("exit status %d, want QEMU's 1", code)
	}
	if got := l.stderr.String(); got != "qemu-system-x86_64: -bogus: invalid option\n" {
		t.Errorf("stderr %q, want QEMU's message alone", got)
	}
	if rec := l.record("tw-n0"); rec != "" {
		t.Errorf("record left behind: %q", rec)
	}
}

// A "QEMU" that never speaks on its monitor (here one that sleeps) is a
// clear error within --qmp-timeout, and is stopped.
func TestQMPNeverAnswers(t *testing.T) {
	nstest.RequireRoot(t)
	hung := filepath.Join(t.TempDir(), "hung-qemu")
	if err := os.WriteFile(hung, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := start(t, nil, nil, "-v", "--qmp-timeout", "1s", hung, "-m", "64")
	if code := l.wait(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	stderr := l.stderr.String()
	if want := "qemu-launch: QEMU did not answer on its QMP monitor within 1s\n"; !strings.HasSuffix(stderr, want) {
		t.Errorf("stderr does not end with %q:\n%s", want, stderr)
	}
	var pid int
	if _, err := fmt.Sscanf(stderr, "qemu-launch: started QEMU, pid %d", &pid); err != nil {
		t.Fatalf("no pid in %q: %v", stderr, err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the hung QEMU %d still runs", pid)
	}
}

// Under a systemd watchdog, qemu-launch pings while QEMU answers, and QEMU
// does not see the watchdog variables.
func TestWatchdog(t *testing.T) {
	requireQEMU(t)
	l := start(t, nil, []string{"WATCHDOG_USEC=200000"}, "--shutdown-timeout", "1s", qemu,
		"-accel", "tcg", "-display", "none", "-nodefaults", "-m", "64", "-S")
	l.waitFor("READY=1")
	l.waitFor("WATCHDOG=1")
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", l.qemuPid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC="} {
		if bytes.Contains(environ, []byte(v)) {
			t.Errorf("QEMU inherited %s", v)
		}
	}
	l.signal(syscall.SIGTERM)
	l.wait()
}

// A priority the kernel refuses (here: qemu-launch without CAP_SYS_NICE)
// is a clear error, and QEMU is stopped rather than left half-configured.
func TestPriorityRefused(t *testing.T) {
	requireQEMU(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) not found: %v", err)
	}
	bin := nstest.Binaries(t)
	cmd := exec.Command(setpriv, "--inh-caps=-sys_nice", "--bounding-set=-sys_nice",
		filepath.Join(bin, "qemu-launch"), "-v", qemu, "-accel", "tcg", "-display", "none", "-nodefaults",
		"-m", "64", "-smp", "2", "-vcpu", "1,prio=80")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(hangGuard):
		cmd.Process.Kill()
		t.Fatalf("qemu-launch still runs after %s\n%s", hangGuard, stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "qemu-launch: vCPU 1: setting thread ") ||
		!strings.Contains(last, " to SCHED_FIFO priority 80: operation not permitted") {
		t.Errorf("last line %q, want the refused priority\n%s", last, stderr.String())
	}
	var pid int
	// After the host check's warnings (a SCHED_FIFO vCPU asks for it).
	_, started, _ := strings.Cut(stderr.String(), "qemu-launch: started QEMU")
	if _, err := fmt.Sscanf(started, ", pid %d", &pid); err != nil {
		t.Fatalf("no pid in %q: %v", stderr.String(), err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("QEMU %d still runs", pid)
	}
}

// A -vcpu mask reaching outside --cpus is refused before anything starts.
func TestMaskOutsideCPUs(t *testing.T) {
	requireQEMU(t)
	requireCPUs(t, 0, 1)
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--cpus", "0", qemu,
		"-accel", "tcg", "-smp", "2", "-vcpu", "1,affinity=0x3,prio=80")
	out, _ := cmd.CombinedOutput()
	want := "qemu-launch: -vcpu 1: affinity 0x3 (CPUs 0-1) reaches CPU 1, outside --cpus 0\n"
	if cmd.ProcessState.ExitCode() != 1 || string(out) != want {
		t.Errorf("exit %d, output %q; want 1 and %q", cmd.ProcessState.ExitCode(), out, want)
	}
}

func TestBinaryNotFound(t *testing.T) {
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "/nonexistent/qemu", "-m", "64")
	cmd.Env = []string{"QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(t.TempDir(), "run")}
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 127 || string(out) != "qemu-launch: QEMU binary /nonexistent/qemu: no such file or directory: check the path; QEMU not started\n" {
		t.Errorf("exit %d, output %q; want 127 and one line naming the binary", code, out)
	}
}
