package hostcheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// Sample files, as the kernel writes them.
const (
	limits8M = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
`
	limitsUnlimited = `Limit                     Soft Limit           Hard Limit           Units     
Max locked memory         unlimited            unlimited            bytes     
`
	statusRoot = "Name:\tqemu-launch\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"
	statusUser = "Name:\tqemu-launch\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
)

// base is a stock host: nothing isolated, nohz_full built in but unused,
// throttling on, an 8 MiB lock limit, run by root.
func base() map[string]string {
	return map[string]string{
		IsolatedPath:  "\n",
		NohzFullPath:  "(null)\n",
		RTRuntimePath: "950000\n",
		RTPeriodPath:  "1000000\n",
		LimitsPath:    limits8M,
		StatusPath:    statusRoot,
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

// emulatorWhere is what the placement finding says of the starvation.
const emulatorWhere = ", where a running SCHED_FIFO vCPU keeps them waiting (the main loop emulates the devices and, under TCG, the guest's timers: the whole guest stalls)"

// The seed's guest: vCPU 1 under SCHED_FIFO 80 on CPU 3, 512 MiB locked.
func seed() VM {
	return VM{RT: []VCPU{{Index: 1, CPUs: cpuset.Of(3), Prio: 80}}, LocksMemory: true, Memory: 512 << 20}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		vm    VM
		want  []string
	}{
		{
			name:  "stock host, seed guest without emulator placement",
			files: with(base(), NohzFullPath, "-"),
			vm:    seed(),
			want: []string{
				"isolation: CPU 3 of the SCHED_FIFO vCPUs is not isolated (isolated: none): boot with isolcpus=3 on the kernel command line",
				"tick: this kernel has no nohz_full (no /sys/devices/system/cpu/nohz_full), so the scheduler tick keeps interrupting CPU 3: use a kernel built with CONFIG_NO_HZ_FULL and boot with nohz_full=3",
				"throttling: real-time throttling is on (kernel.sched_rt_runtime_us=950000 of sched_rt_period_us=1000000): SCHED_FIFO vCPUs may be stopped 50 ms in every 1000 ms; set kernel.sched_rt_runtime_us=-1 (sysctl)",
				"placement: QEMU's other threads (main loop, I/O, RCU, workers) may run on CPU 3 of the SCHED_FIFO vCPUs, where a running SCHED_FIFO vCPU keeps them waiting (the main loop emulates the devices and, under TCG, the guest's timers: the whole guest stalls): put them on housekeeping CPUs with --emulator-cpus (EmulatorCPUs=)",
			},
		},
		{
			name: "a host set up for it",
			files: with(base(), IsolatedPath, "2-3\n", NohzFullPath, "2-3\n", RTRuntimePath, "-1\n",
				LimitsPath, limitsUnlimited, StatusPath, statusUser),
			vm: func() VM {
				vm := seed()
				vm.EmulatorCPUs = cpuset.Of(0, 1)
				vm.IOThreads = map[string]cpuset.Set{"io0": cpuset.Of(2)}
				return vm
			}(),
			want: nil,
		},
		{
			name:  "partly isolated: the fix keeps what is isolated",
			files: with(base(), IsolatedPath, "1,3\n", NohzFullPath, "3\n", RTRuntimePath, "-1\n"),
			vm: VM{RT: []VCPU{{Index: 0, CPUs: cpuset.Of(2), Prio: 10}, {Index: 1, CPUs: cpuset.Of(3), Prio: 80}},
				EmulatorCPUs: cpuset.Of(0, 2), IOThreads: map[string]cpuset.Set{"b": cpuset.Of(3), "a": cpuset.Of(0)}, LocksMemory: true,
				HostCPUs: cpuset.Of(0, 1, 2, 3)},
			want: []string{
				"isolation: CPU 2 of the SCHED_FIFO vCPUs is not isolated (isolated: 1,3): boot with isolcpus=1-3 on the kernel command line",
				"tick: CPU 2 of the SCHED_FIFO vCPUs is not nohz_full (nohz_full: 3): boot with nohz_full=2-3 on the kernel command line",
				"placement: QEMU's other threads share CPU 2 with the SCHED_FIFO vCPUs, where a running SCHED_FIFO vCPU keeps them waiting (the main loop emulates the devices and, under TCG, the guest's timers: the whole guest stalls): take 2 out of --emulator-cpus 0,2 (EmulatorCPUs=)",
				"placement: I/O thread b shares CPU 3 with the SCHED_FIFO vCPUs, where a running SCHED_FIFO vCPU keeps it waiting (and the guest's I/O on it): give it other CPUs with --iothread-cpus b=0-1 ([IOThread] ID=b CPUs=0-1 in a VM file)",
			},
		},
		{
			name:  "mem-lock asked as a user under the default limit: QEMU would fail",
			files: with(base(), StatusPath, statusUser),
			vm:    VM{LocksMemory: true, Memory: 2 << 30},
			want: []string{
				"memory lock: the guest's 2 GiB cannot be locked under RLIMIT_MEMLOCK 8 MiB, so QEMU will fail to start: raise it (LimitMEMLOCK=infinity in the unit, ulimit -l unlimited)",
			},
		},
		{
			name:  "mem-lock without -m: QEMU's 128 MiB",
			files: with(base(), StatusPath, statusUser),
			vm:    VM{LocksMemory: true},
			want: []string{
				"memory lock: the guest's 128 MiB cannot be locked under RLIMIT_MEMLOCK 8 MiB, so QEMU will fail to start: raise it (LimitMEMLOCK=infinity in the unit, ulimit -l unlimited)",
			},
		},
		{
			name:  "no SCHED_FIFO vCPU and nothing locked: nothing to say",
			files: with(base(), StatusPath, statusUser),
			vm:    VM{Memory: 4 << 30},
			want:  nil,
		},
		{
			name: "real-time guest without mem-lock, as a user, kernel without the isolated file",
			files: with(base(), IsolatedPath, "-", NohzFullPath, "0-3\n", RTRuntimePath, "-1\n",
				StatusPath, statusUser),
			vm: VM{RT: []VCPU{{Index: 0, CPUs: cpuset.Of(2, 3), Prio: 1}}, EmulatorCPUs: cpuset.Of(0), Memory: 1 << 30},
			want: []string{
				"isolation: the kernel does not report isolated CPUs (no /sys/devices/system/cpu/isolated): boot with isolcpus=2-3 on the kernel command line",
				"memory lock: the guest's memory is not locked, so page faults can stall the SCHED_FIFO vCPUs: add -overcommit mem-lock=on (MemoryLock=yes in a VM file) and raise RLIMIT_MEMLOCK from 8 MiB to at least 1 GiB (LimitMEMLOCK=infinity in the unit)",
			},
		},
		{
			name:  "throttling that still leaves 100%, and root ignores the limit",
			files: with(base(), IsolatedPath, "3", RTRuntimePath, "1000000\n", NohzFullPath, "3"),
			vm: func() VM {
				vm := seed()
				vm.EmulatorCPUs = cpuset.Of(0)
				vm.Memory = 64 << 30
				return vm
			}(),
			want: nil,
		},
		{
			name:  "the seed's trial: SCHED_OTHER vCPU 0 on the SCHED_FIFO vCPU's CPU, no spare CPU",
			files: with(base(), IsolatedPath, "3", NohzFullPath, "3", RTRuntimePath, "-1\n"),
			vm: func() VM {
				vm := seed()
				vm.Others = []VCPU{{Index: 0, CPUs: cpuset.Of(3)}}
				vm.EmulatorCPUs, vm.HostCPUs = cpuset.Of(2), cpuset.Of(3)
				return vm
			}(),
			want: []string{
				"starvation: vCPU 0 (SCHED_OTHER) may run on CPU 3 with SCHED_FIFO vCPU 1 (priority 80), which keeps it off that CPU for as long as it runs: the guest waits on vCPU 0 (IPIs, locks, its timers), boots slowly and answers late; give vCPU 0 a CPU without a SCHED_FIFO vCPU (every CPU of --cpus 3, HostCPUs=, has a SCHED_FIFO vCPU: add one) with -vcpu 0,affinity=MASK ([VCPU] Index=0 Affinity= in a VM file)",
			},
		},
		{
			name:  "SCHED_OTHER vCPUs anywhere, SCHED_FIFO vCPUs sharing a CPU, emulator threads unplaced",
			files: with(base(), IsolatedPath, "2-3", NohzFullPath, "2-3", RTRuntimePath, "-1\n"),
			vm: VM{
				RT:       []VCPU{{Index: 1, CPUs: cpuset.Of(3), Prio: 80}, {Index: 2, CPUs: cpuset.Of(2, 3), Prio: 70}, {Index: 3, CPUs: cpuset.Of(2), Prio: 70}},
				Others:   []VCPU{{Index: 0, CPUs: cpuset.Of(0, 1, 2, 3)}, {Index: 4, CPUs: cpuset.Of(0)}},
				HostCPUs: cpuset.Of(0, 1, 2, 3), LocksMemory: true,
			},
			want: []string{
				"starvation: vCPU 0 (SCHED_OTHER) may run on CPUs 2-3 with SCHED_FIFO vCPU 1 (priority 80) and SCHED_FIFO vCPU 2 (priority 70) and SCHED_FIFO vCPU 3 (priority 70), which keeps it off that CPU for as long as it runs: the guest waits on vCPU 0 (IPIs, locks, its timers), boots slowly and answers late; give vCPU 0 other CPUs: -vcpu 0,affinity=0x3,prio=0 ([VCPU] Index=0 Affinity=0-1 in a VM file)",
				"starvation: SCHED_FIFO vCPUs 1 (priority 80) and 2 (priority 70) may share CPU 3: vCPU 2 waits while vCPU 1 runs; give each a CPU of its own (-vcpu N,affinity=MASK; [VCPU] Affinity= in a VM file)",
				"starvation: SCHED_FIFO vCPUs 2 (priority 70) and 3 (priority 70) may share CPU 2: at one priority, the one running keeps the other waiting until it blocks; give each a CPU of its own (-vcpu N,affinity=MASK; [VCPU] Affinity= in a VM file)",
				"placement: QEMU's other threads (main loop, I/O, RCU, workers) may run on CPUs 2-3 of the SCHED_FIFO vCPUs" + emulatorWhere + ": put them on housekeeping CPUs with --emulator-cpus 0-1 (EmulatorCPUs=0-1)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Read(nstest.Tree(t, tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, Check(h, tt.vm)); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRead(t *testing.T) {
	h, err := Read(nstest.Tree(t, with(base(), IsolatedPath, "2-3\n", NohzFullPath, "1-3\n", StatusPath, statusUser)))
	if err != nil {
		t.Fatal(err)
	}
	if !h.HasIsolated || !h.Isolated.Equal(cpuset.Of(2, 3)) || !h.HasNohzFull || !h.NohzFull.Equal(cpuset.Of(1, 2, 3)) ||
		!h.HasRT || h.RTRuntime != 950000 || h.RTPeriod != 1000000 || h.MemlockLimit != 8<<20 || h.IPCLock {
		t.Errorf("Read = %+v", h)
	}
	for i, tt := range []struct {
		files map[string]string
		want  string
	}{
		{with(base(), IsolatedPath, "2-x\n"), "sys/devices/system/cpu/isolated: "},
		{with(base(), RTRuntimePath, "lots\n"), "proc/sys/kernel: "},
		{with(base(), LimitsPath, "Limit\n"), `proc/self/limits: no "Max locked memory" line`},
		{with(base(), StatusPath, "CapEff:\tzz\n"), "proc/self/status: CapEff: "},
		{with(base(), StatusPath, "-"), "reading "},
	} {
		root := nstest.Tree(t, tt.files)
		_, err := Read(root)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("bad tree %d: Read = %v, want an error with %q", i, err, tt.want)
		}
	}
}

// This machine, as the kernel reports it: Read must understand its files.
func TestReadThisHost(t *testing.T) {
	h, err := Read("/")
	if err != nil {
		t.Fatal(err)
	}
	online, err := cpuset.Online()
	if err != nil {
		t.Fatal(err)
	}
	if !h.HasIsolated || !h.Isolated.Minus(online).Empty() || !h.HasRT {
		t.Errorf("Read(/) = %+v", h)
	}
}

// threadFiles are the stat and status files of one thread under
// proc/PID/task/TID, with its name, policy, priority and CPUs.
func threadFiles(m map[string]string, pid, tid int, name string, policy, prio int, cpus string) {
	f := make([]string, 52-2)
	for i := range f {
		f[i] = "0"
	}
	f[0] = "S"
	f[22-3] = "77"
	f[40-3], f[41-3] = strconv.Itoa(prio), strconv.Itoa(policy)
	dir := fmt.Sprintf("proc/%d/task/%d/", pid, tid)
	m[dir+"stat"] = fmt.Sprintf("%d (%s) %s\n", tid, name, strings.Join(f, " "))
	m[dir+"status"] = fmt.Sprintf("Name:\t%s\nCpus_allowed:\tf\nCpus_allowed_list:\t%s\n", name, cpus)
}

// launcherFiles make pid a running qemu-launch (started at tick 77)
// whose child is QEMU qemu.
func launcherFiles(m map[string]string, pid, qemu int) {
	m[fmt.Sprintf("proc/%d/comm", pid)] = "qemu-launch\n"
	threadFiles(m, pid, pid, "qemu-launch", 0, 0, "0-3")
	m[fmt.Sprintf("proc/%d/stat", pid)] = m[fmt.Sprintf("proc/%d/task/%d/stat", pid, pid)]
	m[fmt.Sprintf("proc/%d/task/%d/children", pid, pid)] = fmt.Sprintf("%d ", qemu)
}

// otherVMsTree is a host where other launchers run: VM web (found from
// its lock) has a SCHED_FIFO vCPU and its emulator threads on CPU 3; a
// second VM (found from a tap record) keeps to CPU 2; a stale lock names
// a pid that is no launcher, a stale record a launcher that restarted;
// and this VM's own lock and record are there.
func otherVMsTree() map[string]string {
	m := with(base(), IsolatedPath, "3", NohzFullPath, "3", RTRuntimePath, "-1\n")
	run := "run/qemu-tap-helpers/"
	m[run+"net-1/vm.web.lock"] = "300\n"
	launcherFiles(m, 300, 301)
	m["proc/301/cmdline"] = "qemu-system-x86_64\x00-accel\x00kvm\x00-name\x00web,debug-threads=on\x00"
	threadFiles(m, 301, 301, "qemu-system-x86", 0, 0, "0-3")
	threadFiles(m, 301, 302, "CPU 0/KVM", 1, 90, "3")
	threadFiles(m, 301, 303, "CPU 1/KVM", 0, 0, "1")
	threadFiles(m, 301, 304, "call_rcu", 0, 0, "0-3")

	m[run+"net-2/tap0.conf"] = "Bridge=br0\n# qemu-launch pid=400 start=77\n"
	launcherFiles(m, 400, 401)
	m["proc/401/cmdline"] = "qemu-system-x86_64\x00"
	threadFiles(m, 401, 401, "qemu-system-x86", 0, 0, "2")

	m[run+"net-1/vm.old.lock"] = "500\n"
	m["proc/500/comm"] = "bash\n"
	m[run+"net-2/tap1.conf"] = "# qemu-launch pid=600 start=12\n"
	launcherFiles(m, 600, 601)
	threadFiles(m, 601, 601, "qemu-system-x86", 0, 0, "3")

	m[run+"net-1/vm.rt.lock"] = "700\n"
	m[run+"net-1/tap9.conf"] = "# qemu-launch pid=700 start=77\n"
	launcherFiles(m, 700, 701)
	threadFiles(m, 701, 701, "qemu-system-x86", 0, 0, "3")
	return m
}

func TestReadVMs(t *testing.T) {
	root := nstest.Tree(t, otherVMsTree())
	vms, err := ReadVMs(root, "/run/qemu-tap-helpers", 1, "net-1/vm.rt.lock")
	if err != nil {
		t.Fatal(err)
	}
	want := []RunningVM{
		{Name: "web", Launcher: 300, QEMU: 301, Threads: []Thread{
			{TID: 301, Name: "qemu-system-x86", CPUs: cpuset.Of(0, 1, 2, 3)},
			{TID: 302, Name: "CPU 0/KVM", CPUs: cpuset.Of(3), Policy: 1, Prio: 90},
			{TID: 303, Name: "CPU 1/KVM", CPUs: cpuset.Of(1)},
			{TID: 304, Name: "call_rcu", CPUs: cpuset.Of(0, 1, 2, 3)},
		}},
		{Launcher: 400, QEMU: 401, Threads: []Thread{{TID: 401, Name: "qemu-system-x86", CPUs: cpuset.Of(2)}}},
	}
	if diff := cmp.Diff(want, vms, cmp.Comparer(func(a, b cpuset.Set) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("ReadVMs (-want +got):\n%s", diff)
	}
	// No run directory: no launcher has run.
	if vms, err := ReadVMs(t.TempDir(), "/run/qemu-tap-helpers", 1, ""); err != nil || vms != nil {
		t.Errorf("ReadVMs without a run directory = %v, %v", vms, err)
	}
}

// Another VM's threads on this VM's SCHED_FIFO CPU: named, with what
// each side does to the other and what to change; a VM that keeps to
// other CPUs is not mentioned.
func TestCheckOtherVMs(t *testing.T) {
	root := nstest.Tree(t, otherVMsTree())
	h, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if h.VMs, err = ReadVMs(root, "/run/qemu-tap-helpers", 1, "net-1/vm.rt.lock"); err != nil {
		t.Fatal(err)
	}
	vm := seed()
	vm.EmulatorCPUs, vm.HostCPUs = cpuset.Of(2), cpuset.Of(2, 3)
	vm.Others = []VCPU{{Index: 0, CPUs: cpuset.Of(2)}}
	want := []string{
		`other VMs: VM web (qemu-launch pid 300, QEMU pid 301) may run vCPU threads "CPU 0/KVM" (SCHED_FIFO priority 90) and emulator threads "qemu-system-x86" (SCHED_OTHER), "call_rcu" (SCHED_OTHER) on CPU 3 of this VM's SCHED_FIFO vCPUs: ` +
			`this VM's SCHED_FIFO vCPUs keep its SCHED_OTHER threads waiting while they run; its real-time threads at or above this VM's priorities keep this VM's vCPUs waiting. ` +
			`Give this VM's SCHED_FIFO vCPUs CPUs no other VM uses (-vcpu 1,affinity=MASK,prio=80; [VCPU] Affinity= in a VM file), or move that VM's threads off CPU 3 (its --cpus, --emulator-cpus and -vcpu affinity; HostCPUs=, EmulatorCPUs= and [VCPU] Affinity= in its VM file)`,
	}
	if diff := cmp.Diff(want, Check(h, vm)); diff != "" {
		t.Errorf("Check (-want +got):\n%s", diff)
	}

	h.VMs, h.VMsUnread = nil, errors.New("reading the launchers' run directory: open /run/qemu-tap-helpers: permission denied")
	want = []string{"other VMs: reading the launchers' run directory: open /run/qemu-tap-helpers: permission denied, so their placement was not checked: run the check as root"}
	if diff := cmp.Diff(want, Check(h, vm)); diff != "" {
		t.Errorf("Check, run directory unreadable (-want +got):\n%s", diff)
	}
}
