// Package sched places threads of another process: CPU affinity and
// real-time priority, set with sched_setaffinity and sched_setattr and read
// back from the kernel, as libvirt does for vCPU threads.
package sched

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// Policies, as /proc/PID/task/TID/stat field 41 shows them.
const (
	Other = unix.SCHED_NORMAL // the normal time-sharing policy
	FIFO  = unix.SCHED_FIFO
)

// PolicyName names a policy as chrt does.
func PolicyName(p int) string {
	switch p {
	case Other:
		return "SCHED_OTHER"
	case FIFO:
		return "SCHED_FIFO"
	case unix.SCHED_RR:
		return "SCHED_RR"
	case unix.SCHED_BATCH:
		return "SCHED_BATCH"
	case unix.SCHED_IDLE:
		return "SCHED_IDLE"
	case unix.SCHED_DEADLINE:
		return "SCHED_DEADLINE"
	}
	return "policy " + strconv.Itoa(p)
}

// SetAffinity confines thread tid to cpus.
func SetAffinity(tid int, cpus cpuset.Set) error {
	u := cpus.Unix()
	if err := unix.SchedSetaffinity(tid, &u); err != nil {
		return fmt.Errorf("setting the affinity of thread %d to CPUs %s: %w", tid, cpus, err)
	}
	return nil
}

// Affinity returns the CPUs thread tid may run on.
func Affinity(tid int) (cpuset.Set, error) {
	var u unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &u); err != nil {
		return cpuset.Set{}, fmt.Errorf("reading the affinity of thread %d: %w", tid, err)
	}
	return cpuset.FromUnix(&u), nil
}

// SetPriority puts thread tid under SCHED_FIFO at prio (1 to 99), or under
// the normal policy for prio 0.
func SetPriority(tid, prio int) error {
	attr := unix.SchedAttr{Policy: Other}
	if prio > 0 {
		attr.Policy, attr.Priority = FIFO, uint32(prio)
	}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		hint := ""
		if errors.Is(err, unix.EPERM) && prio > 0 {
			hint = fmt.Sprintf(" (needs CAP_SYS_NICE or RLIMIT_RTPRIO >= %d, and no RT group scheduling limit)", prio)
		}
		return fmt.Errorf("setting thread %d to %s: %w%s", tid, Describe(int(attr.Policy), prio), err, hint)
	}
	return nil
}

// Describe names a policy and priority as chrt does: "SCHED_FIFO priority 80".
func Describe(policy, prio int) string {
	if policy == FIFO || policy == unix.SCHED_RR {
		return fmt.Sprintf("%s priority %d", PolicyName(policy), prio)
	}
	return PolicyName(policy)
}

// A Thread is how the kernel schedules one thread.
type Thread struct {
	TID    int
	Name   string // the kernel's comm: QEMU names its threads with -name debug-threads=on
	CPUs   cpuset.Set
	Policy int
	Prio   int // real-time priority, 0 under the normal policies
}

func (t Thread) String() string {
	return fmt.Sprintf("thread %d on CPUs %s under %s", t.TID, t.CPUs, Describe(t.Policy, t.Prio))
}

// Read reads back thread tid of process pid: policy and priority from
// /proc/PID/task/TID/stat (fields 41 and 40), affinity from the kernel.
func Read(pid, tid int) (Thread, error) {
	p := fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid)
	data, err := os.ReadFile(p)
	if err != nil {
		return Thread{}, fmt.Errorf("reading thread %d: %w", tid, err)
	}
	prio, policy, err := parseStat(data)
	if err != nil {
		return Thread{}, fmt.Errorf("%s: %w", p, err)
	}
	cpus, err := Affinity(tid)
	if err != nil {
		return Thread{}, err
	}
	return Thread{TID: tid, Name: commName(data), CPUs: cpus, Policy: policy, Prio: prio}, nil
}

// commName returns field 2 of a stat line, the command name without its
// parentheses: from the first '(' to the last ')'.
func commName(data []byte) string {
	start, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if start < 0 || end < start {
		return ""
	}
	return string(data[start+1 : end])
}

// parseStat returns fields 40 (rt_priority) and 41 (policy) of a stat
// line. Field 2, the command name in parentheses, may hold spaces and
// parentheses itself, so fields are counted after its last ')'.
func parseStat(data []byte) (prio, policy int, err error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("no command name in %.40q", data)
	}
	f := strings.Fields(string(data[end+1:])) // f[0] is field 3
	if len(f) < 41-2 {
		return 0, 0, fmt.Errorf("%d fields, want at least 41", len(f)+2)
	}
	if prio, err = strconv.Atoi(f[40-3]); err != nil {
		return 0, 0, fmt.Errorf("rt_priority: %w", err)
	}
	if policy, err = strconv.Atoi(f[41-3]); err != nil {
		return 0, 0, fmt.Errorf("policy: %w", err)
	}
	return prio, policy, nil
}

// Threads lists the thread ids of process pid.
func Threads(pid int) ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, fmt.Errorf("listing threads of %d: %w", pid, err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// FirstChild returns the first child of process pid (QEMU, for a
// launcher) as /proc/PID/task/TID/children of its threads lists it; 0
// while it has none.
func FirstChild(pid int) int {
	tids, err := Threads(pid)
	if err != nil {
		return 0
	}
	for _, tid := range tids {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, tid))
		for _, f := range strings.Fields(string(data)) {
			if child, err := strconv.Atoi(f); err == nil {
				return child
			}
		}
	}
	return 0
}
