package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// A Process holds the threads of one process through its /proc/PID/task
// directory, so that a thread id someone else reports (QEMU's QMP monitor,
// which the QEMU user may answer for) is acted on only as long as it names
// a thread of that process: the kernel finds a thread id under
// /proc/PID/task only when the thread belongs to PID, and a directory
// opened there stops answering once its thread is gone, even when the id
// is reused.
type Process struct {
	Pid  int
	task *os.File
}

// OpenProcess holds the threads of process pid. The caller makes sure pid
// is still the process it means after the call (for a child: it has not
// been waited for).
func OpenProcess(pid int) (*Process, error) {
	p := "/proc/" + strconv.Itoa(pid) + "/task"
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the threads of %d: %w", pid, &os.PathError{Op: "open", Path: p, Err: err})
	}
	return &Process{Pid: pid, task: os.NewFile(uintptr(fd), p)}, nil
}

// Close lets go of the process.
func (p *Process) Close() error { return p.task.Close() }

// A ForeignError says a thread id is not, or is no longer, a thread of the
// process: nothing was changed, or, when Undone, what was changed was put
// back.
type ForeignError struct {
	TID, Pid int
	Undone   bool // the thread left the process during the change
}

func (e *ForeignError) Error() string {
	if e.Undone {
		return fmt.Sprintf("thread %d left process %d while being placed; its previous affinity and policy were put back", e.TID, e.Pid)
	}
	return fmt.Sprintf("thread %d is not a thread of process %d", e.TID, e.Pid)
}

// A Setting is what Set gives a thread.
type Setting struct {
	CPUs   cpuset.Set // the affinity; empty: left alone
	Policy bool       // set the policy: SCHED_FIFO at Prio, SCHED_OTHER for 0
	Prio   int
}

// Set gives thread tid the setting, provided tid is a thread of p at the
// time: it checks before the change and again after it, and if the thread
// left p in between (it exited and its id went to another process), it
// puts the previous affinity and policy back. A tid not of p is a
// *ForeignError and changes nothing.
func (p *Process) Set(tid int, s Setting) error {
	th, err := p.thread(tid)
	if err != nil {
		return err
	}
	defer unix.Close(th)
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &cpus); err != nil {
		return fmt.Errorf("reading the affinity of thread %d: %w", tid, err)
	}
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return fmt.Errorf("reading the policy of thread %d: %w", tid, err)
	}
	// What was read is the thread's only if it still lives: its id
	// cannot have gone to another thread before it exits.
	if !alive(th) {
		return &ForeignError{TID: tid, Pid: p.Pid}
	}
	err = apply(tid, s)
	if alive(th) {
		return err
	}
	// tid may have named another thread when changed: put back what
	// it had, as far as the kernel lets.
	unix.SchedSetaffinity(tid, &cpus)
	unix.SchedSetAttr(tid, attr, 0)
	return &ForeignError{TID: tid, Pid: p.Pid, Undone: true}
}

func apply(tid int, s Setting) error {
	if !s.CPUs.Empty() {
		if err := SetAffinity(tid, s.CPUs); err != nil {
			return err
		}
	}
	if s.Policy {
		return SetPriority(tid, s.Prio)
	}
	return nil
}

// thread opens /proc/PID/task/TID, which the kernel finds only for a
// thread of PID.
func (p *Process) thread(tid int) (int, error) {
	if tid <= 0 {
		return -1, &ForeignError{TID: tid, Pid: p.Pid}
	}
	fd, err := unix.Openat(int(p.task.Fd()), strconv.Itoa(tid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return -1, &ForeignError{TID: tid, Pid: p.Pid}
	}
	if err != nil {
		return -1, fmt.Errorf("looking up thread %d of %d: %w", tid, p.Pid, err)
	}
	return fd, nil
}

// alive says whether the thread of a /proc/PID/task/TID directory still
// lives.
func alive(th int) bool {
	var st unix.Stat_t
	return unix.Fstatat(th, "stat", &st, 0) == nil
}
