// Package rtbench is make rt-bench: what qemu-launch's real-time placement
// buys, measured where it acts. The same guest runs three ways while
// stress-ng loads every host CPU: (a) the seed's plain taskset, (b)
// qemu-launch with the seed's -vcpu options (vCPU 1 under SCHED_FIFO on
// its own CPU), (c) (b) with --emulator-cpus. For each QEMU thread, by
// name, the host's scheduler counters over the run are read from /proc:
// run-queue delay, involuntary context switches, CPU time and the CPUs it
// ran on. The guest runs cyclictest on its real-time vCPU meanwhile.
package rtbench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bench"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// A Way is one way of starting the guest.
type Way struct {
	Key   string // "a", "b", "c"
	Label string
}

// Ways are the three ways, in the report's order.
var Ways = []Way{
	{"a", "taskset"},
	{"b", "qemu-launch -vcpu"},
	{"c", "qemu-launch -vcpu --emulator-cpus"},
}

// The guest's real-time vCPU and its priority, as in the seed.
const (
	rtVCPU = 1
	rtPrio = 80
)

// marker starts every report of the guest's init on the console.
const marker = "qth-guest: "

// A Config is one benchmark run.
type Config struct {
	QEMU     string // qemu-system-x86_64
	Launcher string // qemu-launch
	Taskset  string // taskset
	Stress   string // stress-ng
	Kernel   string // the guest (test/guest/build rt)
	Initrd   string
	// Housekeeping takes vCPU 0 and, in (c), QEMU's other threads; RT
	// takes the SCHED_FIFO vCPU 1. The seed's CPUs 2 and 3.
	Housekeeping, RT int
	Duration         time.Duration // of each run's cyclictest, the measured window
	Reps             int           // runs per way, interleaved
	Sample           time.Duration // how often the threads' CPUs are sampled
	BootTimeout      time.Duration // from start to cyclictest's start
	Log              io.Writer     `json:"-"` // progress
}

// A Trial is one run of one way.
type Trial struct {
	Way     string // Way.Key
	Rep     int
	Command []string
	Window  time.Duration  // cyclictest's run, as the host saw it
	Uses    map[string]Use // by thread name (MainLoop for the main thread)
	Hist    Hist
	Samples int // of the threads' CPUs
}

// Results are the whole benchmark's.
type Results struct {
	Machine  bench.Machine
	QEMU     string // its --version line
	Cfg      Config
	Stress   []string // stress-ng's command line
	LoadAvg  [2]string
	Started  time.Time
	Took     time.Duration
	Trials   []Trial
	Warnings []string // what qemu-launch said on stderr, once each
}

// Run runs every way Reps times, interleaved (a b c, b c a, c a b, ...),
// under stress-ng on every CPU.
func Run(ctx context.Context, c Config) (*Results, error) {
	if c.Reps < 1 || c.Duration < time.Second {
		return nil, fmt.Errorf("rt-bench: need at least one repetition of at least one second (have %d of %v)", c.Reps, c.Duration)
	}
	if c.Housekeeping == c.RT {
		return nil, fmt.Errorf("rt-bench: the housekeeping CPU and the real-time CPU are both CPU %d; two CPUs are needed", c.RT)
	}
	if c.Sample <= 0 {
		c.Sample = 100 * time.Millisecond
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	res := &Results{Machine: bench.ThisMachine(), Cfg: c, Started: time.Now()}
	if out, err := exec.Command(c.QEMU, "--version").Output(); err == nil {
		res.QEMU, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	online, err := cpuset.Online()
	if err != nil {
		return nil, err
	}
	res.Stress = []string{c.Stress, "--cpu", strconv.Itoa(online.Count()), "--quiet"}
	stress := exec.Command(res.Stress[0], res.Stress[1:]...)
	stress.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stress.Start(); err != nil {
		return nil, fmt.Errorf("starting stress-ng: %w", err)
	}
	defer func() {
		syscall.Kill(-stress.Process.Pid, syscall.SIGKILL)
		stress.Wait()
	}()
	res.LoadAvg[0] = loadAvg()
	seen := map[string]bool{}
	for rep := 0; rep < c.Reps; rep++ {
		for i := range Ways {
			w := Ways[(i+rep)%len(Ways)]
			fmt.Fprintf(c.Log, "rt-bench: run %d/%d, way (%s) %s, %v\n", rep+1, c.Reps, w.Key, w.Label, c.Duration)
			r, stderr, err := c.runOne(ctx, w, rep)
			if err != nil {
				return nil, fmt.Errorf("way (%s), run %d: %w", w.Key, rep+1, err)
			}
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if l != "" && !seen[l] {
					seen[l] = true
					res.Warnings = append(res.Warnings, l)
				}
			}
			fmt.Fprintf(c.Log, "rt-bench:   vCPU %d waited %v on the run queue, the main loop %v, in %v\n", rtVCPU,
				r.Uses[vcpuName(rtVCPU)].RunQueue.Round(time.Millisecond), r.Uses[MainLoop].RunQueue.Round(time.Millisecond), r.Window.Round(time.Millisecond))
			res.Trials = append(res.Trials, r)
		}
	}
	res.LoadAvg[1] = loadAvg()
	res.Took = time.Since(res.Started)
	return res, nil
}

// vcpuName is the name QEMU gives vCPU i's thread under TCG.
func vcpuName(i int) string { return fmt.Sprintf("CPU %d/TCG", i) }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// Command is QEMU's command line for way w, with what starts it.
func (c Config) Command(w Way) []string {
	both := cpuset.Of(c.Housekeeping, c.RT).String()
	appendLine := fmt.Sprintf("console=ttyS0 quiet panic=-1 qth.ip=none qth.gw=none qth.ping=none qth.cyclictest=%d",
		int(c.Duration.Seconds()))
	qemu := []string{c.QEMU, "-accel", "tcg,thread=multi", "-smp", "2", "-m", "256",
		"-overcommit", "mem-lock=on", "-name", "rt-" + w.Key + ",debug-threads=on",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", appendLine}
	vcpus := []string{
		"-vcpu", fmt.Sprintf("0,affinity=%#x,prio=0", 1<<c.Housekeeping),
		"-vcpu", fmt.Sprintf("%d,affinity=%#x,prio=%d", rtVCPU, 1<<c.RT, rtPrio)}
	switch w.Key {
	case "a":
		return append([]string{c.Taskset, "-c", both}, qemu...)
	case "b":
		return append(append([]string{c.Launcher, "--cpus", both, "--"}, qemu...), vcpus...)
	default:
		return append(append([]string{c.Launcher, "--cpus", both, "--emulator-cpus", strconv.Itoa(c.Housekeeping), "--"}, qemu...), vcpus...)
	}
}

// runOne boots the guest one way and measures QEMU's threads while the
// guest runs cyclictest. It returns what the starter said on stderr.
func (c Config) runOne(ctx context.Context, w Way, rep int) (Trial, string, error) {
	r := Trial{Way: w.Key, Rep: rep, Command: c.Command(w)}
	cmd := exec.Command(r.Command[0], r.Command[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return r, "", err
	}
	if err := cmd.Start(); err != nil {
		return r, "", fmt.Errorf("starting %s: %w", r.Command[0], err)
	}
	exited := make(chan error, 1)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), marker); ok {
				lines <- strings.TrimRight(rest, "\r")
			}
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	stop := func() {
		// qemu-launch powers the guest down on SIGTERM; taskset is QEMU.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for range lines {
		}
		<-exited
	}
	fail := func(err error) (Trial, string, error) {
		stop()
		return r, stderr.String(), fmt.Errorf("%w\n%s", err, strings.TrimSpace(stderr.String()))
	}

	deadline := time.NewTimer(c.BootTimeout)
	defer deadline.Stop()
	var (
		tr      *Tracker
		tick    <-chan time.Time
		ticker  *time.Ticker
		started time.Time
		result  string
	)
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for result == "" {
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-deadline.C:
			return fail(fmt.Errorf("the guest did not finish in time (%d samples taken)", r.Samples))
		case <-tick:
			tr.Sample()
			r.Samples++
		case l, ok := <-lines:
			if !ok {
				return fail(errors.New("the console ended before the guest's result"))
			}
			switch {
			case strings.HasPrefix(l, "cyclictest start"):
				pid, err := qemuPid(cmd.Process.Pid, w)
				if err != nil {
					return fail(err)
				}
				if tr, err = NewTracker("/proc", pid); err != nil {
					return fail(err)
				}
				started = time.Now()
				ticker = time.NewTicker(c.Sample)
				tick = ticker.C
				deadline.Reset(c.Duration + 2*time.Minute)
			case l == "cyclictest end":
				if tr == nil {
					return fail(errors.New("the guest reported cyclictest's end before its start"))
				}
				tr.Sample()
				r.Samples++
				r.Window = time.Since(started)
				r.Uses = tr.Uses()
				ticker.Stop()
				tick = nil
			case strings.HasPrefix(l, "cyclictest "):
				if err := r.Hist.Add(l); err != nil {
					return fail(err)
				}
			case strings.HasPrefix(l, "result "):
				result = l
			case strings.HasPrefix(l, "error "):
				fmt.Fprintf(c.Log, "rt-bench:   guest: %s\n", l)
			}
		}
	}
	if result != "result pass" {
		return fail(fmt.Errorf("guest: %s", result))
	}
	if r.Uses == nil {
		return fail(errors.New("the guest passed without running cyclictest"))
	}
	// The guest powers off: QEMU exits, and qemu-launch after it.
	for range lines {
	}
	select {
	case err := <-exited:
		if err != nil {
			return r, stderr.String(), fmt.Errorf("%s: %w\n%s", r.Command[0], err, strings.TrimSpace(stderr.String()))
		}
	case <-time.After(time.Minute):
		return fail(errors.New("QEMU did not exit after the guest powered off"))
	}
	return r, stderr.String(), nil
}

// qemuPid is the QEMU process of the way started as starter: taskset
// execs it, qemu-launch runs it as its only child.
func qemuPid(starter int, w Way) (int, error) {
	if w.Key == "a" {
		return starter, nil
	}
	tids, err := Threads("/proc", starter)
	if err != nil {
		return 0, fmt.Errorf("qemu-launch %d: %w", starter, err)
	}
	for _, tid := range tids {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", starter, tid))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("qemu-launch %d has no child", starter)
}
