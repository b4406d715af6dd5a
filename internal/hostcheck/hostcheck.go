// Package hostcheck tells whether a host suits a real-time guest, as the
// real-time KVM guides set one up: the CPUs of the SCHED_FIFO vCPUs
// isolated (isolcpus=, nohz_full=), real-time throttling off, the guest's
// memory lockable, and QEMU's other threads, the SCHED_OTHER vCPUs and
// other VMs' threads kept off those CPUs, where a SCHED_FIFO vCPU would
// starve them or they it. Each finding is one line saying what to change;
// qemu-launch prints them as warnings (refusals under --strict).
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
	// VMs are the VMs other launchers run (ReadVMs); VMsUnread says why
	// they could not be read, when they could not.
	VMs       []RunningVM
	VMsUnread error
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

// A VCPU is a vCPU, the host CPUs it may run on and its SCHED_FIFO
// priority (0: SCHED_OTHER).
type VCPU struct {
	Index int
	CPUs  cpuset.Set
	Prio  int
}

// A VM is what the guest asks of the host.
type VM struct {
	RT           []VCPU                // the vCPUs under SCHED_FIFO
	Others       []VCPU                // the vCPUs under SCHED_OTHER
	HostCPUs     cpuset.Set            // the CPUs QEMU may use (--cpus, HostCPUs=), where a fix may move a thread
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
	out = append(out, starvedVCPUs(vm, rt)...)
	if vm.EmulatorCPUs.Empty() {
		fix := "put them on housekeeping CPUs with --emulator-cpus (EmulatorCPUs=)"
		if spare := vm.HostCPUs.Minus(rt); !spare.Empty() {
			fix = fmt.Sprintf("put them on housekeeping CPUs with --emulator-cpus %s (EmulatorCPUs=%s)", spare, spare)
		}
		add("placement: QEMU's other threads (main loop, I/O, RCU, workers) may run on %s %s of the SCHED_FIFO vCPUs, where %s: %s",
			cpuWord(rt), rt, emulatorStarved, fix)
	} else if both := intersect(vm.EmulatorCPUs, rt); !both.Empty() {
		add("placement: QEMU's other threads share %s %s with the SCHED_FIFO vCPUs, where %s: take %s out of --emulator-cpus %s (EmulatorCPUs=)",
			cpuWord(both), both, emulatorStarved, both, vm.EmulatorCPUs)
	}
	for _, id := range slices.Sorted(maps.Keys(vm.IOThreads)) {
		if both := intersect(vm.IOThreads[id], rt); !both.Empty() {
			cpus := "LIST"
			if spare := vm.HostCPUs.Minus(rt); !spare.Empty() {
				cpus = spare.String()
			}
			add("placement: I/O thread %s shares %s %s with the SCHED_FIFO vCPUs, where a running SCHED_FIFO vCPU keeps it waiting (and the guest's I/O on it): give it other CPUs with --iothread-cpus %s=%s ([IOThread] ID=%s CPUs=%s in a VM file)",
				id, cpuWord(both), both, id, cpus, id, cpus)
		}
	}
	out = append(out, otherVMs(h, vm)...)
	return out
}

// emulatorStarved is what a SCHED_FIFO vCPU does to QEMU's other threads
// on its CPU.
const emulatorStarved = "a running SCHED_FIFO vCPU keeps them waiting (the main loop emulates the devices and, under TCG, the guest's timers: the whole guest stalls)"

// starvedVCPUs finds the vCPUs that may share a CPU with a SCHED_FIFO
// vCPU that outranks them: a SCHED_OTHER one, or one under SCHED_FIFO at
// the same or a lower priority. The SCHED_FIFO vCPU keeps the CPU for as
// long as it runs; the guest then waits on the other vCPU.
func starvedVCPUs(vm VM, rt cpuset.Set) []string {
	var out []string
	spare := vm.HostCPUs.Minus(rt)
	fix := func(v VCPU) string {
		if spare.Empty() {
			where := ""
			if !vm.HostCPUs.Empty() {
				where = fmt.Sprintf(" (every CPU of --cpus %s, HostCPUs=, has a SCHED_FIFO vCPU: add one)", vm.HostCPUs)
			}
			return fmt.Sprintf("give vCPU %d a CPU without a SCHED_FIFO vCPU%s with -vcpu %d,affinity=MASK ([VCPU] Index=%d Affinity= in a VM file)",
				v.Index, where, v.Index, v.Index)
		}
		return fmt.Sprintf("give vCPU %d other CPUs: -vcpu %d,affinity=%s,prio=%d ([VCPU] Index=%d Affinity=%s in a VM file)",
			v.Index, v.Index, spare.Mask(), v.Prio, v.Index, spare)
	}
	for _, o := range vm.Others {
		var by []string
		var on cpuset.Set
		for _, r := range vm.RT {
			if both := intersect(o.CPUs, r.CPUs); !both.Empty() {
				by = append(by, fmt.Sprintf("SCHED_FIFO vCPU %d (priority %d)", r.Index, r.Prio))
				on = union(on, both)
			}
		}
		if len(by) == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("starvation: vCPU %d (SCHED_OTHER) may run on %s %s with %s, which keeps it off that CPU for as long as it runs: the guest waits on vCPU %d (IPIs, locks, its timers), boots slowly and answers late; %s",
			o.Index, cpuWord(on), on, strings.Join(by, " and "), o.Index, fix(o)))
	}
	for i, a := range vm.RT {
		for _, b := range vm.RT[i+1:] {
			both := intersect(a.CPUs, b.CPUs)
			if both.Empty() {
				continue
			}
			hi, lo := a, b
			if b.Prio > a.Prio {
				hi, lo = b, a
			}
			how := fmt.Sprintf("vCPU %d waits while vCPU %d runs", lo.Index, hi.Index)
			if a.Prio == b.Prio {
				how = "at one priority, the one running keeps the other waiting until it blocks"
			}
			out = append(out, fmt.Sprintf("starvation: SCHED_FIFO vCPUs %d (priority %d) and %d (priority %d) may share %s %s: %s; give each a CPU of its own (-vcpu N,affinity=MASK; [VCPU] Affinity= in a VM file)",
				a.Index, a.Prio, b.Index, b.Prio, cpuWord(both), both, how))
		}
	}
	return out
}

// otherVMs finds the threads of other running VMs that may run on this
// VM's SCHED_FIFO CPUs.
func otherVMs(h Host, vm VM) []string {
	var out []string
	if h.VMsUnread != nil {
		out = append(out, fmt.Sprintf("other VMs: %v, so their placement was not checked: run the check as root", h.VMsUnread))
	}
	for _, o := range h.VMs {
		var vcpus, emu []string
		var on cpuset.Set
		minPrio := 100
		for _, r := range vm.RT {
			minPrio = min(minPrio, r.Prio)
		}
		fifo, other := false, false
		for _, th := range o.Threads {
			var both []cpuset.Set
			for _, r := range vm.RT {
				if x := intersect(th.CPUs, r.CPUs); !x.Empty() {
					both = append(both, x)
				}
			}
			if len(both) == 0 {
				continue
			}
			for _, x := range both {
				on = union(on, x)
			}
			desc := fmt.Sprintf("%q (%s)", th.Name, policy(th.Policy, th.Prio))
			if isVCPUThread(th.Name) {
				vcpus = append(vcpus, desc)
			} else {
				emu = append(emu, desc)
			}
			if th.Policy == 1 || th.Policy == 2 {
				if th.Prio >= minPrio {
					fifo = true
				}
			} else {
				other = true
			}
		}
		if on.Empty() {
			continue
		}
		var which []string
		if len(vcpus) > 0 {
			which = append(which, "vCPU threads "+strings.Join(vcpus, ", "))
		}
		if len(emu) > 0 {
			which = append(which, "emulator threads "+strings.Join(limit(emu, 4), ", "))
		}
		var harm []string
		if other {
			harm = append(harm, "this VM's SCHED_FIFO vCPUs keep its SCHED_OTHER threads waiting while they run")
		}
		if fifo {
			harm = append(harm, "its real-time threads at or above this VM's priorities keep this VM's vCPUs waiting")
		}
		name := "a VM"
		if o.Name != "" {
			name = "VM " + o.Name
		}
		var mine []string
		for _, r := range vm.RT {
			if !intersect(r.CPUs, on).Empty() {
				mine = append(mine, fmt.Sprintf("-vcpu %d,affinity=MASK,prio=%d", r.Index, r.Prio))
			}
		}
		out = append(out, fmt.Sprintf("other VMs: %s (qemu-launch pid %d, QEMU pid %d) may run %s on %s %s of this VM's SCHED_FIFO vCPUs: %s. "+
			"Give this VM's SCHED_FIFO vCPUs CPUs no other VM uses (%s; [VCPU] Affinity= in a VM file), or move that VM's threads off %s %s (its --cpus, --emulator-cpus and -vcpu affinity; HostCPUs=, EmulatorCPUs= and [VCPU] Affinity= in its VM file)",
			name, o.Launcher, o.QEMU, strings.Join(which, " and "), cpuWord(on), on, strings.Join(harm, "; "), strings.Join(mine, " "), cpuWord(on), on))
	}
	return out
}

// isVCPUThread says a thread name is a vCPU's under debug-threads=on:
// "CPU 1/KVM", "CPU 0/TCG".
func isVCPUThread(name string) bool {
	rest, ok := strings.CutPrefix(name, "CPU ")
	if !ok {
		return false
	}
	n, _, ok := strings.Cut(rest, "/")
	_, err := strconv.Atoi(n)
	return ok && err == nil
}

// limit keeps the first n names and counts the rest.
func limit(names []string, n int) []string {
	if len(names) <= n {
		return names
	}
	return append(names[:n:n], fmt.Sprintf("and %d more", len(names)-n))
}

// policy names a policy as chrt does.
func policy(p, prio int) string {
	switch p {
	case 1:
		return fmt.Sprintf("SCHED_FIFO priority %d", prio)
	case 2:
		return fmt.Sprintf("SCHED_RR priority %d", prio)
	case 3:
		return "SCHED_BATCH"
	case 5:
		return "SCHED_IDLE"
	}
	return "SCHED_OTHER"
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
