// Package hostcheck tells whether a host suits a real-time guest, as the
// real-time KVM guides set one up: the CPUs of the SCHED_FIFO vCPUs
// isolated (isolcpus=, nohz_full=), real-time throttling off, the guest's
// memory lockable, and QEMU's other threads kept off those CPUs. Each
// finding is one line saying what to change; qemu-launch prints them as
// warnings (refusals under --strict).
//
// The host is read from a root directory ("/" for this one), so the logic
// is tested against sample /proc and /sys trees.
package hostcheck

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// Files read under the root directory.
const (
	IsolatedPath  = "sys/devices/system/cpu/isolated"  // isolcpus= (domain), as the kernel applies it
	NohzFullPath  = "sys/devices/system/cpu/nohz_full" // absent without CONFIG_NO_HZ_FULL
	RTRuntimePath = "proc/sys/kernel/sched_rt_runtime_us"
	RTPeriodPath  = "proc/sys/kernel/sched_rt_period_us"
	LimitsPath    = "proc/self/limits"
	StatusPath    = "proc/self/status"
)

// Unlimited is an RLIMIT_MEMLOCK of "unlimited".
const Unlimited = math.MaxUint64

// capIPCLock is CAP_IPC_LOCK's bit in CapEff: with it, mlockall ignores
// RLIMIT_MEMLOCK.
const capIPCLock = 14

// A Host is what the check needs to know about the host. The memory lock
// fields describe the process that will run QEMU; Read takes them from the
// reading process, which QEMU inherits them from when it runs as the same
// user. A QEMU run as another user needs them set for that user.
type Host struct {
	Isolated    cpuset.Set
	HasIsolated bool // the kernel reports isolated CPUs
	NohzFull    cpuset.Set
	HasNohzFull bool // the kernel has nohz_full (CONFIG_NO_HZ_FULL)
	// RTRuntime and RTPeriod are sched_rt_runtime_us and
	// sched_rt_period_us; RTRuntime -1 means no throttling.
	RTRuntime, RTPeriod int64
	HasRT               bool
	MemlockLimit        uint64 // soft RLIMIT_MEMLOCK in bytes, Unlimited for none
	IPCLock             bool   // CAP_IPC_LOCK: the limit does not apply
}

// Read reads the host under root.
func Read(root string) (Host, error) {
	var h Host
	var err error
	read := func(rel string) (string, bool, error) {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("reading %s: %w", filepath.Join(root, rel), err)
		}
		return strings.TrimSpace(string(data)), true, nil
	}
	list := func(rel string, set *cpuset.Set, has *bool) error {
		v, ok, err := read(rel)
		if err != nil || !ok {
			return err
		}
		*has = true
		if v == "" || v == "(null)" {
			// nohz_full prints an unallocated mask as "(null)" when
			// the kernel has it but was booted without nohz_full=.
			return nil
		}
		if *set, err = cpuset.ParseList(v); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(root, rel), err)
		}
		return nil
	}
	if err = list(IsolatedPath, &h.Isolated, &h.HasIsolated); err != nil {
		return h, err
	}
	if err = list(NohzFullPath, &h.NohzFull, &h.HasNohzFull); err != nil {
		return h, err
	}
	rt, okRT, err := read(RTRuntimePath)
	if err != nil {
		return h, err
	}
	period, okP, err := read(RTPeriodPath)
	if err != nil {
		return h, err
	}
	if okRT && okP {
		h.RTRuntime, err = strconv.ParseInt(rt, 10, 64)
		if err == nil {
			h.RTPeriod, err = strconv.ParseInt(period, 10, 64)
		}
		if err != nil {
			return h, fmt.Errorf("%s: %w", filepath.Join(root, "proc/sys/kernel"), err)
		}
		h.HasRT = true
	}
	if h.MemlockLimit, err = memlockLimit(filepath.Join(root, LimitsPath)); err != nil {
		return h, err
	}
	if h.IPCLock, err = hasCap(filepath.Join(root, StatusPath), capIPCLock); err != nil {
		return h, err
	}
	return h, nil
}

// memlockLimit reads the soft "Max locked memory" of a limits file.
func memlockLimit(path string) (uint64, error) {
	v, err := line(path, "Max locked memory")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty Max locked memory", path)
	}
	if f[0] == "unlimited" {
		return Unlimited, nil
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: Max locked memory: %w", path, err)
	}
	return n, nil
}

// hasCap reads whether CapEff of a status file holds capability bit.
func hasCap(path string, bit uint) (bool, error) {
	v, err := line(path, "CapEff:")
	if err != nil {
		return false, err
	}
	caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
	if err != nil {
		return false, fmt.Errorf("%s: CapEff: %w", path, err)
	}
	return caps&(1<<bit) != 0, nil
}

// line returns the rest of the first line of path starting with prefix.
func line(path, prefix string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return "", fmt.Errorf("%s: no %q line", path, prefix)
}

// A VCPU is a vCPU under SCHED_FIFO and the host CPUs it may run on.
type VCPU struct {
	Index int
	CPUs  cpuset.Set
	Prio  int
}

// A VM is what the guest asks of the host.
type VM struct {
	RT           []VCPU                // the vCPUs under SCHED_FIFO
	EmulatorCPUs cpuset.Set            // QEMU's other threads; empty: not placed
	IOThreads    map[string]cpuset.Set // I/O threads placed apart, by id
	LocksMemory  bool                  // -overcommit mem-lock=on
	Memory       int64                 // the guest's memory in bytes
}

// DefaultMemory is QEMU's guest memory without -m (x86).
const DefaultMemory = 128 << 20

// Check returns the findings, one line each, in a fixed order.
func Check(h Host, vm VM) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	var rt cpuset.Set
	for _, v := range vm.RT {
		rt = union(rt, v.CPUs)
	}
	mem := vm.Memory
	if mem <= 0 {
		mem = DefaultMemory
	}
	lockable := h.IPCLock || h.MemlockLimit >= uint64(mem)
	if vm.LocksMemory && !lockable {
		add("memory lock: the guest's %s cannot be locked under RLIMIT_MEMLOCK %s, so QEMU will fail to start: raise it (LimitMEMLOCK=infinity in the unit, ulimit -l unlimited)",
			size(uint64(mem)), size(h.MemlockLimit))
	}
	if len(vm.RT) == 0 {
		return out
	}
	if h.HasIsolated {
		if off := rt.Minus(h.Isolated); !off.Empty() {
			add("isolation: %s %s of the SCHED_FIFO vCPUs %s not isolated (isolated: %s): boot with isolcpus=%s on the kernel command line",
				cpuWord(off), off, isAre(off), orNone(h.Isolated), union(h.Isolated, rt))
		}
	} else {
		add("isolation: the kernel does not report isolated CPUs (no /%s): boot with isolcpus=%s on the kernel command line", IsolatedPath, rt)
	}
	if h.HasNohzFull {
		if off := rt.Minus(h.NohzFull); !off.Empty() {
			add("tick: %s %s of the SCHED_FIFO vCPUs %s not nohz_full (nohz_full: %s): boot with nohz_full=%s on the kernel command line",
				cpuWord(off), off, isAre(off), orNone(h.NohzFull), union(h.NohzFull, rt))
		}
	} else {
		add("tick: this kernel has no nohz_full (no /%s), so the scheduler tick keeps interrupting %s %s: use a kernel built with CONFIG_NO_HZ_FULL and boot with nohz_full=%s",
			NohzFullPath, cpuWord(rt), rt, rt)
	}
	if h.HasRT && h.RTRuntime >= 0 && h.RTRuntime < h.RTPeriod {
		add("throttling: real-time throttling is on (kernel.sched_rt_runtime_us=%d of sched_rt_period_us=%d): SCHED_FIFO vCPUs may be stopped %s in every %s; set kernel.sched_rt_runtime_us=-1 (sysctl)",
			h.RTRuntime, h.RTPeriod, usec(h.RTPeriod-h.RTRuntime), usec(h.RTPeriod))
	}
	if !vm.LocksMemory {
		fix := "add -overcommit mem-lock=on (MemoryLock=yes in a VM file)"
		if !lockable {
			fix += fmt.Sprintf(" and raise RLIMIT_MEMLOCK from %s to at least %s (LimitMEMLOCK=infinity in the unit)", size(h.MemlockLimit), size(uint64(mem)))
		}
		add("memory lock: the guest's memory is not locked, so page faults can stall the SCHED_FIFO vCPUs: %s", fix)
	}
	if vm.EmulatorCPUs.Empty() {
		add("placement: QEMU's other threads (main loop, I/O, RCU, workers) may run on %s %s of the SCHED_FIFO vCPUs: put them on housekeeping CPUs with --emulator-cpus (EmulatorCPUs=)",
			cpuWord(rt), rt)
	} else if both := intersect(vm.EmulatorCPUs, rt); !both.Empty() {
		add("placement: QEMU's other threads share %s %s with the SCHED_FIFO vCPUs: take %s out of --emulator-cpus %s (EmulatorCPUs=)",
			cpuWord(both), both, both, vm.EmulatorCPUs)
	}
	for _, id := range slices.Sorted(maps.Keys(vm.IOThreads)) {
		if both := intersect(vm.IOThreads[id], rt); !both.Empty() {
			add("placement: I/O thread %s shares %s %s with the SCHED_FIFO vCPUs: give it other CPUs", id, cpuWord(both), both)
		}
	}
	return out
}

func intersect(a, b cpuset.Set) cpuset.Set { return a.Minus(a.Minus(b)) }

func union(a, b cpuset.Set) cpuset.Set {
	var u cpuset.Set
	for _, c := range append(a.CPUs(), b.CPUs()...) {
		u.Add(c)
	}
	return u
}

func cpuWord(s cpuset.Set) string {
	if s.Count() == 1 {
		return "CPU"
	}
	return "CPUs"
}

func isAre(s cpuset.Set) string {
	if s.Count() == 1 {
		return "is"
	}
	return "are"
}

func orNone(s cpuset.Set) string {
	if s.Empty() {
		return "none"
	}
	return s.String()
}

// size shows a byte count in the largest binary unit that divides it.
func size(n uint64) string {
	if n == Unlimited {
		return "unlimited"
	}
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatUint(n>>u.shift, 10) + " " + u.name
		}
	}
	return strconv.FormatUint(n, 10) + " bytes"
}

func usec(n int64) string {
	if n%1000 == 0 {
		return strconv.FormatInt(n/1000, 10) + " ms"
	}
	return strconv.FormatInt(n, 10) + " µs"
}
