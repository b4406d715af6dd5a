package launch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// Placement beyond the vCPUs. QEMU starts on the emulator CPUs (see
// startCPUs), so that its main loop, RCU thread, workers and whatever
// thread they start later inherit them: QEMU creates its worker threads
// from the main loop for that reason. The vCPU threads and the I/O
// threads placed by id then get their own CPUs, and every thread is read
// back from /proc, again after the guest resumes. Only thread ids are
// used, never QEMU's credentials, so this holds whoever QEMU runs as; and
// a thread id, whether QMP or /proc names it, is changed only while it is
// one of QEMU's threads (sched.Process): QEMU's user may answer on QMP.

// A place is where one thread belongs.
type place struct {
	what string     // "vCPU 1", "I/O thread io0", "emulator"
	cpus cpuset.Set // empty: anywhere (not placed)
}

// A placement maps the threads of one QEMU to their places.
type placement struct {
	byTID    map[int]place // vCPU and placed I/O threads
	emulator cpuset.Set    // every other thread
}

func (pl placement) of(tid int) place {
	if p, ok := pl.byTID[tid]; ok {
		return p
	}
	return place{what: "emulator", cpus: pl.emulator}
}

// placement is where r's threads belong, once their ids are known.
func (r *run) placement() placement {
	pl := placement{byTID: map[int]place{}, emulator: r.EmulatorCPUs}
	for i, tid := range r.vcpuTIDs {
		pl.byTID[tid] = place{what: "vCPU " + strconv.Itoa(i), cpus: r.vcpuCPUs(i)}
	}
	for id, tid := range r.ioTIDs {
		pl.byTID[tid] = place{what: "I/O thread " + id, cpus: r.IOThreadCPUs[id]}
	}
	return pl
}

// place puts the vCPU threads without a -vcpu option and the I/O threads
// named in IOThreadCPUs on their CPUs, then reads every thread back. The
// guest has not run yet: a thread that cannot be placed is an error.
func (r *run) place(ctx context.Context) error {
	if !r.placesThreads() {
		return nil
	}
	pid := r.cmd.Process.Pid
	proc, err := r.qemuThreads()
	if err != nil {
		return err
	}
	defer proc.Close()
	for _, i := range slices.Sorted(maps.Keys(r.vcpuTIDs)) {
		tid := r.vcpuTIDs[i]
		if tid == pid && !r.EmulatorCPUs.Empty() {
			return fmt.Errorf("vCPU %d: QEMU runs it on its main thread %d, so the emulator threads cannot be placed apart (single-threaded TCG? use -accel tcg,thread=multi)", i, tid)
		}
		if slices.ContainsFunc(r.Pins, func(p qemuargs.Pin) bool { return p.VCPU == i }) {
			continue // pin placed it
		}
		if cpus := r.vcpuCPUs(i); !cpus.Empty() {
			if err := setThread(proc, fmt.Sprintf("vCPU %d", i), tid, sched.Setting{CPUs: cpus}); err != nil {
				return err
			}
		}
	}
	if len(r.IOThreadCPUs) > 0 {
		ios, err := r.qmp.QueryIOThreads(ctx)
		if err != nil {
			return fmt.Errorf("listing I/O threads: %w", err)
		}
		r.ioTIDs = map[string]int{}
		for _, io := range ios {
			r.ioTIDs[io.ID] = io.ThreadID
		}
		for _, id := range slices.Sorted(maps.Keys(r.IOThreadCPUs)) {
			tid, ok := r.ioTIDs[id]
			if !ok {
				return fmt.Errorf("I/O thread %s: QEMU lists no thread for it", id)
			}
			if err := setThread(proc, "I/O thread "+id, tid, sched.Setting{CPUs: r.IOThreadCPUs[id]}); err != nil {
				return err
			}
		}
	}
	return r.readBack()
}

// readBack reads every thread of QEMU from /proc and checks it against
// the placement. A thread found elsewhere (one started by a vCPU or a
// placed I/O thread inherits their CPUs) is moved where it belongs, and
// said so with -v; one that cannot be moved is an error.
func (r *run) readBack() error {
	pid := r.cmd.Process.Pid
	proc, err := r.qemuThreads()
	if err != nil {
		return err
	}
	defer proc.Close()
	tids, err := sched.Threads(pid)
	if err != nil {
		return err
	}
	slices.Sort(tids)
	pl := r.placement()
	var errs []error
	for _, tid := range tids {
		p := pl.of(tid)
		th, err := sched.Read(pid, tid)
		if gone(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !p.cpus.Empty() && !th.CPUs.Equal(p.cpus) {
			from := th.CPUs
			// A thread listed, then gone, may have left its id
			// to another process: Set refuses that one.
			if err := proc.Set(tid, sched.Setting{CPUs: p.cpus}); gone(err) {
				continue
			} else if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.what, err))
				continue
			}
			if th, err = sched.Read(pid, tid); gone(err) {
				continue
			} else if err != nil {
				errs = append(errs, err)
				continue
			}
			if !th.CPUs.Equal(p.cpus) {
				errs = append(errs, fmt.Errorf("%s: %s, want CPUs %s", p.what, describeThread(th), p.cpus))
				continue
			}
			r.logf("moved %s from CPUs %s to %s (%s)", describeThread(th), from, p.cpus, p.what)
		}
		r.logf("%s: %s", p.what, describeThread(th))
	}
	return errors.Join(errs...)
}

// recheck runs after the guest resumes: threads started since are placed
// too. A failure does not stop a running guest; it is said on stderr.
func (r *run) recheck() {
	if !r.placesThreads() {
		return
	}
	r.logf("reading QEMU's threads back after resuming the guest")
	if err := r.readBack(); err != nil {
		fmt.Fprintf(r.cfg.Stderr, "qemu-launch: warning: placing QEMU's threads after resuming the guest: %v\n", err)
	}
}

// gone says a thread exited while being read or placed.
func gone(err error) bool {
	var fe *sched.ForeignError
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) || errors.As(err, &fe)
}

func describeThread(th sched.Thread) string {
	return fmt.Sprintf("thread %q %d on CPUs %s under %s", th.Name, th.TID, th.CPUs, sched.Describe(th.Policy, th.Prio))
}
