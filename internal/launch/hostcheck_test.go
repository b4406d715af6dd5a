package launch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/hostcheck"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// What the host check is told of a plan: every vCPU with the CPUs it may
// run on, SCHED_FIFO ones apart; a vCPU without -vcpu affinity runs
// where QEMU's vCPUs do.
func TestHostVM(t *testing.T) {
	p := &Plan{
		Result: &qemuargs.Result{VCPUs: 3, LocksMemory: true, Memory: 512 << 20, Pins: []qemuargs.Pin{
			{VCPU: 0, CPUs: cpuset.Of(3)}, {VCPU: 1, CPUs: cpuset.Of(3), Prio: 80}, {VCPU: 2, Prio: 10}}},
		VCPUCPUs: cpuset.Of(2, 3), EmulatorCPUs: cpuset.Of(2),
	}
	want := hostcheck.VM{
		RT:       []hostcheck.VCPU{{Index: 1, CPUs: cpuset.Of(3), Prio: 80}, {Index: 2, CPUs: cpuset.Of(2, 3), Prio: 10}},
		Others:   []hostcheck.VCPU{{Index: 0, CPUs: cpuset.Of(3)}},
		HostCPUs: cpuset.Of(2, 3), EmulatorCPUs: cpuset.Of(2), LocksMemory: true, Memory: 512 << 20,
	}
	if diff := cmp.Diff(want, p.hostVM(), cmp.Comparer(cpuset.Set.Equal)); diff != "" {
		t.Errorf("hostVM (-want +got):\n%s", diff)
	}
}

// thread writes the stat and status files of one thread into files.
func thread(files map[string]string, pid, tid int, name string, policy, prio int, cpus string) {
	f := make([]string, 52-2)
	for i := range f {
		f[i] = "0"
	}
	f[40-3], f[41-3] = fmt.Sprint(prio), fmt.Sprint(policy)
	dir := fmt.Sprintf("proc/%d/task/%d/", pid, tid)
	files[dir+"stat"] = fmt.Sprintf("%d (%s) S %s\n", tid, name, strings.Join(f[1:], " "))
	files[dir+"status"] = "Cpus_allowed_list:\t" + cpus + "\n"
}

// The seed's starved vCPU and another VM on the SCHED_FIFO CPU, on a
// sample host whose run directory holds that VM's lock: both found, and
// --strict refuses.
func TestCheckHostStarvedAndOtherVM(t *testing.T) {
	files := map[string]string{
		"sys/devices/system/cpu/isolated":     "1\n",
		"sys/devices/system/cpu/nohz_full":    "1\n",
		"proc/sys/kernel/sched_rt_runtime_us": "-1\n",
		"proc/sys/kernel/sched_rt_period_us":  "1000000\n",
		"proc/self/limits":                    "Max locked memory         unlimited            unlimited            bytes\n",
		"proc/self/status":                    "CapEff:\t000001ffffffffff\n",
		"run/t/net-5/vm.web.lock":             "300\n",
		"proc/300/comm":                       "qemu-launch\n",
		"proc/300/task/300/children":          "301 ",
		"proc/301/cmdline":                    "qemu-system-x86_64\x00-name\x00web,debug-threads=on\x00",
	}
	thread(files, 300, 300, "qemu-launch", 0, 0, "0-1")
	thread(files, 301, 301, "qemu-system-x86", 0, 0, "0-1")
	thread(files, 301, 302, "CPU 0/KVM", 0, 0, "0")
	c, out := testConfig()
	c.hostRoot = nstest.Tree(t, files)
	c.Strict = true
	p := &Plan{
		Result: &qemuargs.Result{Name: "rt", VCPUs: 2, LocksMemory: true, Memory: 256 << 20, Pins: []qemuargs.Pin{
			{VCPU: 0, CPUs: cpuset.Of(1)}, {VCPU: 1, CPUs: cpuset.Of(1), Prio: 80}}},
		VCPUCPUs: cpuset.Of(0, 1), EmulatorCPUs: cpuset.Of(0), RunDir: "/run/t", cfg: c,
	}
	code, err := p.CheckHost(out)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "2 warning(s), refused under --strict") {
		t.Errorf("CheckHost --strict = %d, %v, want 1 and a refusal for two warnings", code, err)
	}
	for _, w := range []string{
		"warning: starvation: vCPU 0 (SCHED_OTHER) may run on CPU 1 with SCHED_FIFO vCPU 1 (priority 80), which keeps it off that CPU for as long as it runs",
		"give vCPU 0 other CPUs: -vcpu 0,affinity=0x1,prio=0 ([VCPU] Index=0 Affinity=0 in a VM file)",
		`warning: other VMs: VM web (qemu-launch pid 300, QEMU pid 301) may run emulator threads "qemu-system-x86" (SCHED_OTHER) on CPU 1 of this VM's SCHED_FIFO vCPUs`,
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--check-host does not say %q:\n%s", w, out)
		}
	}
}
