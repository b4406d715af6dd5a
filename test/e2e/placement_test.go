package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/qmp"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// splitCPUs gives the emulator CPU and the vCPUs' CPU: two different ones.
func splitCPUs(t *testing.T) (emulator, vcpus int) {
	t.Helper()
	c0, c1 := twoCPUs(t)
	if c0 == c1 {
		t.Fatalf("placement tests need two CPUs this test may run on; it has only CPU %d", c0)
	}
	return c0, c1
}

// qemuOf is the pid of the QEMU a qemu-launch runs (its only child).
func qemuOf(t *testing.T, launcher int) int {
	t.Helper()
	tids, err := sched.Threads(launcher)
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", launcher, tid))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("qemu-launch %d has no child", launcher)
	return 0
}

// threadsOf reads every thread of pid back from /proc, as a user would
// with ps -L and taskset -p, and logs each one.
func threadsOf(t *testing.T, pid int, when string) []sched.Thread {
	t.Helper()
	tids, err := sched.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	var ths []sched.Thread
	for _, tid := range tids {
		th, err := sched.Read(pid, tid)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // exited meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: thread %-16q tid %-7d CPUs %-4s %s", when, th.Name, th.TID, th.CPUs, sched.Describe(th.Policy, th.Prio))
		ths = append(ths, th)
	}
	return ths
}

// A want is where the threads of one name prefix belong.
type want struct {
	prefix string // thread name (-name debug-threads=on), "" for any other
	cpus   cpuset.Set
	policy int
	prio   int
}

// checkPlaced checks every thread against the first want its name
// matches; the last want, with prefix "", takes the rest. Each named
// want must match a thread.
func checkPlaced(t *testing.T, ths []sched.Thread, wants []want, when string) {
	t.Helper()
	seen := map[string]int{}
	for _, th := range ths {
		for _, w := range wants {
			if !strings.HasPrefix(th.Name, w.prefix) {
				continue
			}
			seen[w.prefix]++
			if !th.CPUs.Equal(w.cpus) || th.Policy != w.policy || th.Prio != w.prio {
				t.Errorf("%s: thread %q %d on CPUs %s under %s, want CPUs %s under %s", when, th.Name, th.TID,
					th.CPUs, sched.Describe(th.Policy, th.Prio), w.cpus, sched.Describe(w.policy, w.prio))
			}
			break
		}
	}
	for _, w := range wants {
		if seen[w.prefix] == 0 {
			t.Errorf("%s: no thread %q", when, w.prefix)
		}
	}
	if n := seen[""]; n < 2 {
		t.Errorf("%s: %d emulator threads, want the main loop and at least the RCU thread", when, n)
	}
}

// TestLaunchEmulatorPlacement is the seed's command with --emulator-cpus,
// split as a real-time host is: the SCHED_FIFO vCPU 1 alone on its CPU,
// vCPU 0 and every other thread of QEMU (main loop, RCU, workers started
// later) on the housekeeping CPU. Read from /proc once the guest has
// booted, and again after it has run and answered pings through its tap
// and an I/O thread was hot-added on a monitor of the test's own.
func TestLaunchEmulatorPlacement(t *testing.T) {
	ns, g := setup(t)
	emu, vc := splitCPUs(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
	dir := t.TempDir()
	cpus := cpuset.Of(emu, vc)
	mon := filepath.Join(dir, "qmp.sock")
	args := []string{launcher(t), "-v", "--cpus", cpus.String(), "--emulator-cpus", strconv.Itoa(emu), "--",
		qemuBinary, "-accel", "tcg", "-m", "256", "-realtime", "mlock=on", "-smp", "2",
		"-name", "rt,process=rt-kvm,debug-threads=on", "-no-reboot", "-nographic",
		"-append", guest.Config{Answer: 2 * pings}.Append(),
		"-vcpu", fmt.Sprintf("0,affinity=%#x,prio=0", 1<<emu),
		"-vcpu", fmt.Sprintf("1,affinity=%#x,prio=80", 1<<vc),
		"-kernel", g.Kernel, "-initrd", g.Initrd,
		"-qmp", "unix:" + mon + ",server=on,wait=off",
		"-device", "e1000,netdev=vm0", "-netdev", "tap,id=vm0"}
	v := startVM(t, ns, helperEnv(dir), args...)
	v.ready(t)
	pid := qemuOf(t, v.cmd.Process.Pid)
	wants := []want{
		{prefix: "CPU 0/TCG", cpus: cpuset.Of(emu), policy: sched.Other},
		{prefix: "CPU 1/TCG", cpus: cpuset.Of(vc), policy: sched.FIFO, prio: 80},
		{prefix: "", cpus: cpuset.Of(emu), policy: sched.Other},
	}
	checkPlaced(t, threadsOf(t, pid, "booted"), wants, "booted")

	// A thread QEMU starts long after the launcher placed the others.
	hotAddIOThread(t, mon, "late")
	// Some seconds of running, with network I/O through the main loop.
	hostPing(t, ns, guestAddr, pings)
	wants = append([]want{{prefix: "IO late", cpus: cpuset.Of(emu), policy: sched.Other}}, wants...)
	checkPlaced(t, threadsOf(t, pid, "after pings"), wants, "after pings")

	hostPing(t, ns, guestAddr, pings)
	v.passed(t)
	// The launcher's own read-back, with -v.
	for _, w := range []string{"emulator: thread", "vCPU 1: thread \"CPU 1/TCG\"", "reading QEMU's threads back after resuming the guest"} {
		if !strings.Contains(v.stderr.String(), w) {
			t.Errorf("qemu-launch -v never said %q", w)
		}
	}
}

// hotAddIOThread creates an I/O thread in a running QEMU over the QMP
// monitor at sock.
func hotAddIOThread(t *testing.T, sock, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c, err := qmp.New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Execute(ctx, "object-add", map[string]string{"qom-type": "iothread", "id": id}, nil); err != nil {
		t.Fatal(err)
	}
}

// notifyListener is a NOTIFY_SOCKET the test reads qemu-launch's
// readiness from.
func notifyListener(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, sock
}

// waitReady reads what qemu-launch tells systemd until READY=1.
func waitReady(t *testing.T, conn *net.UnixConn, v *vm) {
	t.Helper()
	end := time.Now().Add(bootTimeout)
	buf := make([]byte, 4096)
	for time.Now().Before(end) {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if v.exited() {
				t.Fatalf("qemu-launch exited before READY=1\nstderr:\n%s", v.stderr.String())
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf[:n], []byte("READY=1")) {
			return
		}
	}
	t.Fatalf("no READY=1 from qemu-launch within %s\nstderr:\n%s", bootTimeout, v.stderr.String())
}

// An I/O thread placed by id from a VM file ([IOThread] ID= CPUs=), with
// EmulatorCPUs=: read back from /proc. The guest runs firmware only.
func TestLaunchIOThreadFromVMFile(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireTool(t, qemuBinary, "qemu-system-x86")
	ns := nstest.New(t)
	emu, vc := splitCPUs(t)
	conf := filepath.Join(nstest.TrustedDir(t), "io.conf")
	vmFile := fmt.Sprintf(`[VM]
Accel=tcg
Memory=64M
VCPUs=2
HostCPUs=%d,%d
EmulatorCPUs=%d
Graphics=no

[IOThread]
ID=disk0
CPUs=%d

[IOThread]
ID=spare

[QEMU]
Arguments=-nodefaults -name io,debug-threads=on
`, emu, vc, emu, vc)
	if err := os.WriteFile(conf, []byte(vmFile), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, sock := notifyListener(t)
	v := startVM(t, ns, append(helperEnv(t.TempDir()), "NOTIFY_SOCKET="+sock), launcher(t), "--shutdown-timeout", "1s", "--config", conf)
	waitReady(t, conn, v)
	pid := qemuOf(t, v.cmd.Process.Pid)
	// vCPUs without -vcpu affinity run on HostCPUs=; an I/O thread without
	// CPUs= is one of the emulator threads.
	wants := []want{
		{prefix: "CPU ", cpus: cpuset.Of(emu, vc), policy: sched.Other},
		{prefix: "IO disk0", cpus: cpuset.Of(vc), policy: sched.Other},
		{prefix: "IO spare", cpus: cpuset.Of(emu), policy: sched.Other},
		{prefix: "", cpus: cpuset.Of(emu), policy: sched.Other},
	}
	checkPlaced(t, threadsOf(t, pid, "running"), wants, "running")
	// The firmware ignores the ACPI power button: SIGTERM follows, and
	// QEMU exits 0 on it.
	v.cmd.Process.Signal(unix.SIGTERM)
	if err := v.wait(t); err != nil {
		t.Errorf("qemu-launch: %v, want exit status 0\nstderr:\n%s", err, v.stderr.String())
	}
}

// --check-host on this machine: it reports the isolation and real-time
// throttling as the kernel has them here, and --strict fails on them.
func TestLaunchCheckHost(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireTool(t, qemuBinary, "qemu-system-x86")
	emu, vc := splitCPUs(t)
	args := []string{"--check-host", "--cpus", cpuset.Of(emu, vc).String(), "--emulator-cpus", strconv.Itoa(emu), "--",
		qemuBinary, "-accel", "tcg", "-m", "256", "-realtime", "mlock=on", "-smp", "2",
		"-vcpu", fmt.Sprintf("0,affinity=%#x,prio=0", 1<<vc), "-vcpu", fmt.Sprintf("1,affinity=%#x,prio=80", 1<<vc)}
	out, err := exec.Command(launcher(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-launch --check-host: %v\n%s", err, out)
	}
	t.Logf("qemu-launch --check-host on this machine:\n%s", out)

	// What the kernel says here, read independently of the launcher.
	var wantLines []string
	isolated := readList(t, "/sys/devices/system/cpu/isolated")
	if !isolated.Has(vc) {
		wantLines = append(wantLines, fmt.Sprintf("warning: isolation: CPU %d of the SCHED_FIFO vCPUs is not isolated", vc))
	}
	runtime, period := readInt(t, "/proc/sys/kernel/sched_rt_runtime_us"), readInt(t, "/proc/sys/kernel/sched_rt_period_us")
	if runtime >= 0 && runtime < period {
		wantLines = append(wantLines, fmt.Sprintf("warning: throttling: real-time throttling is on (kernel.sched_rt_runtime_us=%d of sched_rt_period_us=%d)", runtime, period))
	}
	for _, w := range wantLines {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("--check-host does not say %q", w)
		}
	}
	if strings.Contains(string(out), "placement:") {
		t.Error("--check-host warns about placement although the emulator threads are apart from the SCHED_FIFO vCPU")
	}

	// --strict: non-zero with findings, as a start would be refused.
	strict := append([]string{"--strict"}, args...)
	out, err = exec.Command(launcher(t), strict...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case len(wantLines) > 0 && (!errors.As(err, &ee) || ee.ExitCode() != 1):
		t.Errorf("qemu-launch --strict --check-host: %v, want exit status 1\n%s", err, out)
	case len(wantLines) > 0 && !bytes.Contains(out, []byte("refused under --strict")):
		t.Errorf("qemu-launch --strict --check-host does not say why it fails:\n%s", out)
	}
}

func readList(t *testing.T, path string) cpuset.Set {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return cpuset.Set{}
	}
	s, err := cpuset.ParseList(v)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}
