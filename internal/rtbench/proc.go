package rtbench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// A Reading is what the kernel counts for one thread, read from
// /proc/PID/task/TID at one moment.
type Reading struct {
	TID  int
	Name string // comm: QEMU names its threads with -name ...,debug-threads=on
	// CPUTime and RunQueue are fields 1 and 2 of schedstat: time on a CPU
	// and time runnable but waiting on a run queue.
	CPUTime, RunQueue time.Duration
	Involuntary       int64 // nonvoluntary_ctxt_switches of status
	Processor         int   // field 39 of stat: the CPU it last ran on
}

// ReadThread reads thread tid of process pid under proc (/proc).
func ReadThread(proc string, pid, tid int) (Reading, error) {
	dir := filepath.Join(proc, strconv.Itoa(pid), "task", strconv.Itoa(tid))
	r := Reading{TID: tid}
	data, err := os.ReadFile(filepath.Join(dir, "schedstat"))
	if err != nil {
		return r, err
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return r, fmt.Errorf("%s/schedstat: %d fields, want 3", dir, len(f))
	}
	cpu, err1 := strconv.ParseInt(f[0], 10, 64)
	rq, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return r, fmt.Errorf("%s/schedstat: %q", dir, bytes.TrimSpace(data))
	}
	r.CPUTime, r.RunQueue = time.Duration(cpu), time.Duration(rq)
	if r.Name, r.Processor, err = readStat(filepath.Join(dir, "stat")); err != nil {
		return r, err
	}
	if r.Involuntary, err = involuntary(filepath.Join(dir, "status")); err != nil {
		return r, err
	}
	return r, nil
}

// readStat returns the command name (field 2) and processor (field 39) of
// a stat file. The name is in parentheses and may hold spaces ("CPU 1/TCG"),
// so fields are counted after its last ')'.
func readStat(path string) (string, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", 0, err
	}
	start, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if start < 0 || end < start {
		return "", 0, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(data[end+1:])) // f[0] is field 3
	if len(f) < 39-2 {
		return "", 0, fmt.Errorf("%s: %d fields, want at least 39", path, len(f)+2)
	}
	cpu, err := strconv.Atoi(f[39-3])
	if err != nil {
		return "", 0, fmt.Errorf("%s: processor: %w", path, err)
	}
	return string(data[start+1 : end]), cpu, nil
}

func involuntary(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "nonvoluntary_ctxt_switches:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: nonvoluntary_ctxt_switches: %w", path, err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no nonvoluntary_ctxt_switches line", path)
}

// Threads lists the thread ids of process pid under proc.
func Threads(proc string, pid int) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(proc, strconv.Itoa(pid), "task"))
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}

// A Tracker follows the threads of one QEMU over a measurement window:
// the first reading of each thread, its last, and every CPU it was seen
// on. Threads that start inside the window count from zero; one that
// exits keeps what its last reading said.
type Tracker struct {
	proc  string
	pid   int
	first map[int]Reading
	last  map[int]Reading
	cpus  map[int]*cpuset.Set
}

// NewTracker reads every thread of pid: the start of the window.
func NewTracker(proc string, pid int) (*Tracker, error) {
	t := &Tracker{proc: proc, pid: pid, first: map[int]Reading{}, last: map[int]Reading{}, cpus: map[int]*cpuset.Set{}}
	tids, err := Threads(proc, pid)
	if err != nil {
		return nil, fmt.Errorf("QEMU %d: %w", pid, err)
	}
	for _, tid := range tids {
		r, err := ReadThread(proc, pid, tid)
		if err != nil {
			continue // exited meanwhile
		}
		t.first[tid] = r
		t.see(r)
	}
	if len(t.first) == 0 {
		return nil, fmt.Errorf("QEMU %d: no thread could be read", pid)
	}
	return t, nil
}

// Sample reads every thread again: what it counts so far, and the CPU it
// is on.
func (t *Tracker) Sample() {
	tids, err := Threads(t.proc, t.pid)
	if err != nil {
		return // QEMU exited: the last readings stand
	}
	for _, tid := range tids {
		if r, err := ReadThread(t.proc, t.pid, tid); err == nil {
			if _, ok := t.first[tid]; !ok {
				// Born inside the window: everything it counts is.
				t.first[tid] = Reading{TID: tid, Name: r.Name}
			}
			t.see(r)
		}
	}
}

func (t *Tracker) see(r Reading) {
	t.last[r.TID] = r
	s, ok := t.cpus[r.TID]
	if !ok {
		s = &cpuset.Set{}
		t.cpus[r.TID] = s
	}
	s.Add(r.Processor)
}

// A Use is what a group of threads of one name did in a window.
type Use struct {
	Threads     int
	CPUTime     time.Duration
	RunQueue    time.Duration
	Involuntary int64
	CPUs        []int // every CPU a sample saw one of them on, in order
}

// MainLoop names QEMU's main thread, whatever its comm.
const MainLoop = "main loop"

// Uses sums the window per thread name: the main thread as MainLoop,
// the others by their comm (the vCPUs as "CPU 1/TCG", QEMU's thread pool
// as "worker").
func (t *Tracker) Uses() map[string]Use {
	out := map[string]Use{}
	for tid, l := range t.last {
		f := t.first[tid]
		name := l.Name
		if tid == t.pid {
			name = MainLoop
		}
		u := out[name]
		u.Threads++
		u.CPUTime += l.CPUTime - f.CPUTime
		u.RunQueue += l.RunQueue - f.RunQueue
		u.Involuntary += l.Involuntary - f.Involuntary
		u.CPUs = cpuset.Of(append(u.CPUs, t.cpus[tid].CPUs()...)...).CPUs()
		out[name] = u
	}
	return out
}
