package hostcheck

import (
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
				"placement: QEMU's other threads (main loop, I/O, RCU, workers) may run on CPU 3 of the SCHED_FIFO vCPUs: put them on housekeeping CPUs with --emulator-cpus (EmulatorCPUs=)",
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
				EmulatorCPUs: cpuset.Of(0, 2), IOThreads: map[string]cpuset.Set{"b": cpuset.Of(3), "a": cpuset.Of(0)}, LocksMemory: true},
			want: []string{
				"isolation: CPU 2 of the SCHED_FIFO vCPUs is not isolated (isolated: 1,3): boot with isolcpus=1-3 on the kernel command line",
				"tick: CPU 2 of the SCHED_FIFO vCPUs is not nohz_full (nohz_full: 3): boot with nohz_full=2-3 on the kernel command line",
				"placement: QEMU's other threads share CPU 2 with the SCHED_FIFO vCPUs: take 2 out of --emulator-cpus 0,2 (EmulatorCPUs=)",
				"placement: I/O thread b shares CPU 3 with the SCHED_FIFO vCPUs: give it other CPUs",
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
