package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// TestLaunchStarvedVCPU is the seed-style command that went unflagged in
// a trial: vCPU 0 (priority 0, SCHED_OTHER) on the same CPU as vCPU 1
// (SCHED_FIFO 80), where vCPU 1 keeps the CPU and vCPU 0 starves. The
// launcher warns at the start, naming vCPU 0, the CPU and the fix, and
// the guest's threads read back from /proc are as the warning says;
// --check-host says the same; under --strict the start is refused before
// QEMU runs.
func TestLaunchStarvedVCPU(t *testing.T) {
	ns, g := setup(t)
	emu, vc := splitCPUs(t)
	dir := t.TempDir()
	cpus := cpuset.Of(emu, vc)
	options := []string{"--shutdown-timeout", "1s", "--cpus", cpus.String(), "--emulator-cpus", strconv.Itoa(emu), "--"}
	qemu := []string{qemuBinary, "-accel", "tcg", "-m", "256", "-smp", "2", "-overcommit", "mem-lock=on",
		"-name", "starved,debug-threads=on", "-no-reboot", "-nographic",
		"-vcpu", fmt.Sprintf("0,affinity=%#x,prio=0", 1<<vc),
		"-vcpu", fmt.Sprintf("1,affinity=%#x,prio=80", 1<<vc)}
	qemu = append(qemu, g.Args(guest.Config{Addrs: []string{"none"}, Gateway: "none", Ping: []string{"none"}})...)
	warning := fmt.Sprintf("qemu-launch: warning: starvation: vCPU 0 (SCHED_OTHER) may run on CPU %d with SCHED_FIFO vCPU 1 (priority 80), "+
		"which keeps it off that CPU for as long as it runs: the guest waits on vCPU 0 (IPIs, locks, its timers), boots slowly and answers late; "+
		"give vCPU 0 other CPUs: -vcpu 0,affinity=%#x,prio=0 ([VCPU] Index=0 Affinity=%d in a VM file)", vc, 1<<emu, emu)

	// --check-host names it, without starting anything.
	out, _ := exec.Command(launcher(t), append(append([]string{"--check-host"}, options...), qemu...)...).CombinedOutput()
	if !strings.Contains(string(out), strings.TrimPrefix(warning, "qemu-launch: ")) {
		t.Errorf("--check-host does not say %q:\n%s", strings.TrimPrefix(warning, "qemu-launch: "), out)
	}

	// --strict: refused before QEMU starts.
	v := startVM(t, ns, helperEnv(dir), append(append([]string{launcher(t), "--strict"}, options...), qemu...)...)
	err := v.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(v.stderr.String(), warning) ||
		!strings.Contains(v.stderr.String(), "refused under --strict") {
		t.Errorf("qemu-launch --strict: %v, want exit status 1 with the warning and a refusal\nstderr:\n%s", err, v.stderr.String())
	}
	if o := v.console.Output(); o != "" {
		t.Errorf("qemu-launch --strict started QEMU:\n%s", o)
	}

	// Without --strict: the guest runs, placed as the warning says.
	v = startVM(t, ns, helperEnv(dir), append(append([]string{launcher(t)}, options...), qemu...)...)
	pid := waitPlaced(t, v)
	if !strings.Contains(v.stderr.String(), warning) {
		t.Errorf("qemu-launch does not warn %q\nstderr:\n%s", warning, v.stderr.String())
	}
	wants := []want{
		{prefix: "CPU 0/TCG", cpus: cpuset.Of(vc), policy: sched.Other},
		{prefix: "CPU 1/TCG", cpus: cpuset.Of(vc), policy: sched.FIFO, prio: 80},
		{prefix: "", cpus: cpuset.Of(emu), policy: sched.Other},
	}
	checkPlaced(t, threadsOf(t, pid, "running"), wants, "running")
	v.cmd.Process.Signal(unix.SIGTERM)
	v.wait(t)
}

// waitPlaced waits until the launcher has put vCPU 1 under SCHED_FIFO,
// and returns QEMU's pid.
func waitPlaced(t *testing.T, v *vm) int {
	t.Helper()
	end := time.Now().Add(bootTimeout)
	for time.Now().Before(end) {
		if v.exited() {
			t.Fatalf("qemu-launch exited\nstderr:\n%s", v.stderr.String())
		}
		if pid := sched.FirstChild(v.cmd.Process.Pid); pid > 0 {
			tids, _ := sched.Threads(pid)
			for _, tid := range tids {
				if th, err := sched.Read(pid, tid); err == nil && th.Name == "CPU 1/TCG" && th.Policy == sched.FIFO {
					return pid
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("vCPU 1 not under SCHED_FIFO within %v\nstderr:\n%s", bootTimeout, v.stderr.String())
	return 0
}
