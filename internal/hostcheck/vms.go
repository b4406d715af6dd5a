package hostcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// The launchers' traces in their run directory (package rundir): each
// running qemu-launch holds net-ID/vm.NAME.lock with its pid in it, and
// signs the tap records it writes, net-ID/IFNAME.conf, on their last line.
const (
	lockPrefix  = "vm."
	lockSuffix  = ".lock"
	recordExt   = ".conf"
	ownerPrefix = "# qemu-launch pid="
	launcherCmd = "qemu-launch" // its comm
)

// A Thread is one thread of another VM's QEMU, as /proc shows it.
type Thread struct {
	TID    int
	Name   string // comm: "CPU 1/KVM" with -name ...,debug-threads=on
	CPUs   cpuset.Set
	Policy int // as field 41 of stat: 0 SCHED_OTHER, 1 SCHED_FIFO, 2 SCHED_RR
	Prio   int // field 40, real-time priority
}

// A RunningVM is a VM another qemu-launch runs on this host.
type RunningVM struct {
	Name     string // QEMU's -name, "" without one
	Launcher int    // qemu-launch's pid
	QEMU     int    // its QEMU's pid
	Threads  []Thread
}

// ReadVMs finds the VMs other launchers run from their locks and records
// under runDir (the launchers' run directory, e.g. /run/qemu-tap-helpers),
// both read under root, and reads their QEMUs' threads from root's /proc.
// The launcher self is left out, and so is the launcher holding skipLock
// (net-ID/vm.NAME.lock: this VM, already running). A run directory that
// is missing means no VM runs; one this process may not read is an error
// wrapping fs.ErrPermission.
func ReadVMs(root, runDir string, self int, skipLock string) ([]RunningVM, error) {
	base := filepath.Join(root, runDir)
	nets, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the launchers' run directory: %w", err)
	}
	proc := filepath.Join(root, "proc")
	skip := map[int]bool{self: true}
	var launchers []int
	for _, n := range nets {
		if !n.IsDir() || !strings.HasPrefix(n.Name(), "net-") {
			continue
		}
		dir := filepath.Join(base, n.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading the launchers' run directory: %w", err)
		}
		for _, f := range files {
			name := f.Name()
			var pid int
			switch {
			case strings.HasPrefix(name, lockPrefix) && strings.HasSuffix(name, lockSuffix):
				pid = lockHolder(filepath.Join(dir, name))
				if filepath.Join(n.Name(), name) == skipLock && pid > 0 {
					skip[pid] = true
					continue
				}
			case strings.HasSuffix(name, recordExt):
				pid = recordOwner(proc, filepath.Join(dir, name))
			}
			if pid > 0 && !slices.Contains(launchers, pid) && isLauncher(proc, pid) {
				launchers = append(launchers, pid)
			}
		}
	}
	slices.Sort(launchers)
	var vms []RunningVM
	for _, l := range launchers {
		if skip[l] {
			continue
		}
		vm, ok := readVM(proc, l)
		if ok {
			vms = append(vms, vm)
		}
	}
	return vms, nil
}

// lockHolder is the pid a launcher wrote into its VM lock; 0 if none.
func lockHolder(path string) int {
	data, err := readSmall(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// recordOwner is the pid of the launcher that signed a tap record, when
// that launcher still runs (same pid and start time); else 0.
func recordOwner(proc, path string) int {
	data, err := readSmall(path)
	if err != nil {
		return 0
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	rest, ok := strings.CutPrefix(lines[len(lines)-1], ownerPrefix)
	if !ok {
		return 0
	}
	p, s, ok := strings.Cut(rest, " start=")
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(s, 10, 64)
	if !ok || err1 != nil || err2 != nil || pid <= 0 {
		return 0
	}
	if st, err := startTime(proc, pid); err != nil || st != start {
		return 0
	}
	return pid
}

// readSmall reads a record or lock: a few short lines.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// isLauncher says pid is a running qemu-launch: a stale lock's pid may
// have been reused by anything.
func isLauncher(proc string, pid int) bool {
	data, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "comm"))
	return err == nil && strings.TrimSpace(string(data)) == launcherCmd
}

// startTime is field 22 of /proc/PID/stat.
func startTime(proc string, pid int) (uint64, error) {
	_, f, err := readStatFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	if len(f) < 22-2 {
		return 0, fmt.Errorf("pid %d: short stat", pid)
	}
	return strconv.ParseUint(f[22-3], 10, 64)
}

// readStatFile returns the command name of a stat file and the fields
// after it (field 3 first). The name may hold spaces and ')'.
func readStatFile(path string) (string, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	start, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if start < 0 || end < start {
		return "", nil, fmt.Errorf("%s: no command name", path)
	}
	return string(data[start+1 : end]), strings.Fields(string(data[end+1:])), nil
}

// readVM reads the QEMU that launcher runs (its child) and its threads;
// false when there is none (yet, or any more).
func readVM(proc string, launcher int) (RunningVM, bool) {
	vm := RunningVM{Launcher: launcher}
	tasks, _ := os.ReadDir(filepath.Join(proc, strconv.Itoa(launcher), "task"))
	for _, t := range tasks {
		data, _ := os.ReadFile(filepath.Join(proc, strconv.Itoa(launcher), "task", t.Name(), "children"))
		if f := strings.Fields(string(data)); len(f) > 0 {
			vm.QEMU, _ = strconv.Atoi(f[0])
			break
		}
	}
	if vm.QEMU <= 0 {
		return vm, false
	}
	qemu := filepath.Join(proc, strconv.Itoa(vm.QEMU))
	if data, err := os.ReadFile(filepath.Join(qemu, "cmdline")); err == nil {
		vm.Name = qemuName(strings.Split(strings.TrimRight(string(data), "\x00"), "\x00"))
	}
	tasks, err := os.ReadDir(filepath.Join(qemu, "task"))
	if err != nil {
		return vm, false
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if th, err := readThread(filepath.Join(qemu, "task", t.Name()), tid); err == nil {
			vm.Threads = append(vm.Threads, th)
		}
	}
	slices.SortFunc(vm.Threads, func(a, b Thread) int { return a.TID - b.TID })
	return vm, len(vm.Threads) > 0
}

// readThread reads a thread's name, policy and priority (stat) and the
// CPUs it may run on (Cpus_allowed_list of status).
func readThread(dir string, tid int) (Thread, error) {
	th := Thread{TID: tid}
	name, f, err := readStatFile(filepath.Join(dir, "stat"))
	if err != nil {
		return th, err
	}
	if len(f) < 41-2 {
		return th, fmt.Errorf("%s/stat: %d fields", dir, len(f)+2)
	}
	th.Name = name
	if th.Prio, err = strconv.Atoi(f[40-3]); err != nil {
		return th, fmt.Errorf("%s/stat: rt_priority: %w", dir, err)
	}
	if th.Policy, err = strconv.Atoi(f[41-3]); err != nil {
		return th, fmt.Errorf("%s/stat: policy: %w", dir, err)
	}
	st, err := os.Open(filepath.Join(dir, "status"))
	if err != nil {
		return th, err
	}
	defer st.Close()
	sc := bufio.NewScanner(st)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Cpus_allowed_list:"); ok {
			th.CPUs, err = cpuset.ParseList(strings.TrimSpace(v))
			return th, err
		}
	}
	return th, fmt.Errorf("%s/status: no Cpus_allowed_list", dir)
}

// qemuName is the guest name of QEMU's -name option ("rt" of
// "rt,debug-threads=on" or "guest=rt,..."); "" without one.
func qemuName(argv []string) string {
	for i := 1; i+1 < len(argv); i++ {
		if argv[i] != "-name" && argv[i] != "--name" {
			continue
		}
		for j, part := range strings.Split(argv[i+1], ",") {
			if v, ok := strings.CutPrefix(part, "guest="); ok {
				return v
			}
			if j == 0 && !strings.Contains(part, "=") {
				return part
			}
		}
	}
	return ""
}
