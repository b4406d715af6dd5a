package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// Config says what to measure.
type Config struct {
	Ifup, Ifdown string // the helpers under test
	Empty        string // an empty static Go program: the floor
	Imports      string // an empty program linking the helpers' libraries
	Rounds       int    // pairs per variant and scale
	Scales       []int  // interface counts; the first is the baseline
	Load         int    // ifups started at once
	LoadRounds   int
	Log          io.Writer // progress
}

// A variant is one way of doing ifup and ifdown; without programs, the
// helpers' changes made in-process.
type variant struct {
	Name               string
	Up, Down           string
	Flag               string // before the tap's name, if set
	UpLabel, DownLabel string // in the load figures
}

// Results holds everything make bench reports.
type Results struct {
	Machine  Machine
	Rounds   int
	Variants []string        // in the order of the report
	Pair     map[string]Stat // per variant, at the first scale
	Faults   map[string]Stat // minor page faults per pair, at the first scale
	CPU      map[string]Stat // CPU time (user+system) per pair in ms, at the first scale
	Scales   []Scale
	Load     []LoadResult
	Memory   []Program
	RunDirFS string // the file system of the helpers' run directory
	Version  string // qemu-ifup --version
	Started  time.Time
	Took     time.Duration
}

// A Scale is the pair's cost with Links interfaces in the namespace.
type Scale struct {
	Links, Ports int
	Pair         map[string]Stat
}

// A LoadResult is the wall time of N processes started at once.
type LoadResult struct {
	What string
	N    int
	Wall Stat
}

// A Program is one executable's size and peak memory.
type Program struct {
	Name string
	Size int64 // bytes; 0 for a script
	HWM  Stat  // KiB
}

const (
	shellName   = "classic shell pair"
	floorName   = "empty Go pair (floor)"
	importsName = "empty Go pair linking the helpers' libraries"
	versionName = "qemu-ifup --version + qemu-ifdown --version"
	oursName    = "qemu-ifup + qemu-ifdown"
	// inProcName is the helpers' netlink work without any process: the
	// same plans applied from this process, the part no start-up trick
	// can remove.
	inProcName = "the same changes in-process (no exec)"
)

// Run measures, in namespaces it creates and removes, and returns the
// figures. dir holds the shell scripts and scratch files.
// An interrupt (ctx done) stops it between two measurements, and the
// namespaces are removed all the same.
func Run(ctx context.Context, cfg Config, dir string) (res *Results, err error) {
	res = &Results{Started: time.Now(), Rounds: cfg.Rounds, Machine: ThisMachine()}
	// The helpers say which commit they were built from.
	if out, err := exec.Command(cfg.Ifup, "--version").Output(); err == nil {
		res.Version = strings.TrimSpace(string(out))
	}
	shUp, shDown, err := writeShellPair(dir)
	if err != nil {
		return nil, err
	}
	shell := variant{Name: shellName, Up: shUp, Down: shDown,
		UpLabel: "shell up script (ifconfig, brctl addif)", DownLabel: "shell down script (brctl delif)"}
	floor := variant{Name: floorName, Up: cfg.Empty, Down: cfg.Empty}
	imports := variant{Name: importsName, Up: cfg.Imports, Down: cfg.Imports}
	// The helpers started and stopped with no work: what their size and
	// initialisation cost over the libraries'.
	version := variant{Name: versionName, Up: cfg.Ifup, Down: cfg.Ifdown, Flag: "--version"}
	ours := variant{Name: oursName, Up: cfg.Ifup, Down: cfg.Ifdown, UpLabel: "qemu-ifup", DownLabel: "qemu-ifdown"}
	inproc := variant{Name: inProcName}
	res.Variants = []string{shellName, floorName, importsName, versionName, oursName, inProcName}
	run, cleanup, err := runDir(dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	res.RunDirFS = fsName(run)
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		// No config file and an empty run dir: the built-in defaults
		// (virbr0), as on a host with nothing configured.
		"QEMU_IFUP_CONFIG=" + filepath.Join(dir, "no-such.conf"),
		"QEMU_TAP_HELPERS_RUNDIR=" + run,
	}

	// One namespace per scale, all alive at once, so that the rounds can
	// interleave every variant and scale and machine noise hits all alike.
	var spaces []*ns
	defer func() {
		for _, n := range spaces {
			if cerr := n.close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	for _, total := range cfg.Scales {
		n, err := newNS()
		if err != nil {
			return nil, err
		}
		spaces = append(spaces, n)
		br, err := n.addBridge("virbr0")
		if err != nil {
			return nil, err
		}
		ports := total / 4
		t0 := time.Now()
		if err := n.populate(total, ports, br); err != nil {
			return nil, err
		}
		links, err := n.countLinks()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "bench: namespace %s: %d interfaces (+1 tap while measuring), %d ports on virbr0, made in %v\n",
			n.name, links, ports, time.Since(t0).Round(time.Millisecond))
		res.Scales = append(res.Scales, Scale{Links: links + 1, Ports: ports, Pair: map[string]Stat{}})
	}

	type task struct {
		v     variant
		scale int
	}
	tasks := []task{{shell, 0}, {floor, 0}, {imports, 0}, {version, 0}, {ours, 0}, {inproc, 0}}
	for i := 1; i < len(cfg.Scales); i++ {
		tasks = append(tasks, task{shell, i}, task{ours, i}, task{inproc, i})
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	walls := map[task][]time.Duration{}
	faults := map[task][]int64{}
	cpus := map[task][]time.Duration{}
	const warmup = 3
	fmt.Fprintf(cfg.Log, "bench: %d rounds of %d pairs, interleaved in random order\n", cfg.Rounds, len(tasks))
	for round := -warmup; round < cfg.Rounds; round++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		order := slices.Clone(tasks)
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, t := range order {
			wall, use, err := pair(spaces[t.scale], t.v, env, stderr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.v.Name, err)
			}
			if round >= 0 {
				walls[t] = append(walls[t], wall)
				faults[t] = append(faults[t], use.faults)
				cpus[t] = append(cpus[t], use.cpu)
			}
		}
	}
	for t, w := range walls {
		res.Scales[t.scale].Pair[t.v.Name] = durStat(w)
	}
	res.Pair = res.Scales[0].Pair
	res.Faults = map[string]Stat{}
	res.CPU = map[string]Stat{}
	for t, f := range faults {
		if t.scale == 0 && t.v.Up != "" {
			res.Faults[t.v.Name] = intStat(f)
			res.CPU[t.v.Name] = durStat(cpus[t])
		}
	}

	fmt.Fprintf(cfg.Log, "bench: peak memory\n")
	if res.Memory, err = memory(spaces[0], cfg, shell, env); err != nil {
		return nil, err
	}

	for _, v := range []variant{ours, shell} {
		fmt.Fprintf(cfg.Log, "bench: load, %s\n", v.Name)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		up, down, err := load(cfg, v, env)
		if err != nil {
			return nil, fmt.Errorf("load, %s: %w", v.Name, err)
		}
		res.Load = append(res.Load, up, down)
	}
	res.Took = time.Since(res.Started)
	return res, nil
}

// runDir returns the base of the helpers' run directory (their per-tap
// locks) for the run: on a tmpfs when /dev/shm is one, as /run is on a
// systemd host, else under dir. The file system shows: a lock file created
// and removed per run costs several times more on ext4 than on tmpfs.
func runDir(dir string) (string, func(), error) {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		d, err := os.MkdirTemp("/dev/shm", "qth-bench-run-")
		if err != nil {
			return "", nil, err
		}
		return d, func() { os.RemoveAll(d) }, nil
	}
	return filepath.Join(dir, "run"), func() {}, nil
}

// fsName names the file system holding path, for the report.
func fsName(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("file system %#x", st.Type)
}

// memory measures the peak memory of each program of a pair on a fresh
// tap, a few times: the helpers, the floor, and the shell and the tools
// the scripts run (each on its own, as a script's children are not traced).
func memory(n *ns, cfg Config, shell variant, env []string) ([]Program, error) {
	const tap, times = "bench0", 10
	progs := []struct {
		name string
		argv []string
	}{
		{"qemu-ifup", []string{cfg.Ifup, tap}},
		{"qemu-ifdown", []string{cfg.Ifdown, tap}},
		{"empty Go program", []string{cfg.Empty, tap}},
		{"empty Go program linking the libraries", []string{cfg.Imports, tap}},
		{"ifconfig", []string{"ifconfig", tap, "0.0.0.0", "promisc", "up"}},
		{"brctl", []string{"brctl", "addif", "virbr0", tap}},
		// The down script, which undoes brctl addif; its child brctl is
		// not counted.
		{"sh (running the down script)", []string{shell.Down, tap}},
	}
	hwm := make([][]int64, len(progs))
	var err error
	for range times {
		n.do(func() {
			if err = n.addTap(tap); err != nil {
				return
			}
			defer func() {
				if derr := n.delLink(tap); derr != nil && err == nil {
					err = derr
				}
			}()
			for i, p := range progs {
				var kb int64
				if kb, err = peakRSS(p.argv, env); err != nil {
					return
				}
				hwm[i] = append(hwm[i], kb)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("peak memory: %w", err)
		}
	}
	out := make([]Program, len(progs))
	for i, p := range progs {
		out[i] = Program{Name: p.name, HWM: intStat(hwm[i])}
		path := p.argv[0]
		if lp, err := exec.LookPath(path); err == nil {
			path = lp
		}
		if fi, err := os.Stat(path); err == nil && !strings.HasSuffix(path, ".sh") {
			out[i].Size = fi.Size()
		}
	}
	return out, nil
}

func (v variant) argv(prog, tap string) []string {
	if v.Flag != "" {
		return []string{prog, v.Flag, tap}
	}
	return []string{prog, tap}
}

// writeShellPair writes the classic scripts QEMU users have in
// /etc/qemu-ifup and /etc/qemu-ifdown.
func writeShellPair(dir string) (up, down string, err error) {
	up, down = filepath.Join(dir, "ifup.sh"), filepath.Join(dir, "ifdown.sh")
	scripts := map[string]string{
		up:   "#!/bin/sh\nifconfig $1 0.0.0.0 promisc up\nbrctl addif virbr0 $1\n",
		down: "#!/bin/sh\nbrctl delif virbr0 $1\n",
	}
	for p, s := range scripts {
		if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
			return "", "", err
		}
	}
	return up, down, nil
}

// pair creates a fresh tap as QEMU would, times v's ifup and ifdown on it
// back to back, and removes the tap. Only the two processes are timed.
func pair(n *ns, v variant, env []string, stderr *os.File) (time.Duration, usage, error) {
	var wall time.Duration
	var use usage
	var err error
	const tap = "bench0"
	n.do(func() {
		if err = n.addTap(tap); err != nil {
			err = fmt.Errorf("add tap: %w", err)
			return
		}
		defer func() {
			if derr := n.delLink(tap); derr != nil && err == nil {
				err = fmt.Errorf("delete tap: %w", derr)
			}
		}()
		if v.Up == "" {
			wall, err = inProcess(n, tap)
			return
		}
		stderr.Truncate(0)
		stderr.Seek(0, io.SeekStart)
		t0 := time.Now()
		var cmd *exec.Cmd
		if cmd, err = start(v.argv(v.Up, tap), env, stderr); err != nil {
			return
		}
		var u usage
		if u, err = wait(cmd, stderr); err != nil {
			return
		}
		use.add(u)
		if cmd, err = start(v.argv(v.Down, tap), env, stderr); err != nil {
			return
		}
		if u, err = wait(cmd, stderr); err != nil {
			return
		}
		wall = time.Since(t0)
		use.add(u)
	})
	return wall, use, err
}

// load starts cfg.Load ifups of v at once on as many fresh taps of one
// bridge, checks that every tap became an up port, then does the same with
// ifdowns; cfg.LoadRounds times.
func load(cfg Config, v variant, env []string) (up, down LoadResult, err error) {
	n, err := newNS()
	if err != nil {
		return up, down, err
	}
	defer func() {
		if cerr := n.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	br, err := n.addBridge("virbr0")
	if err != nil {
		return up, down, err
	}
	taps := make([]string, cfg.Load)
	for i := range taps {
		taps[i] = fmt.Sprintf("load%d", i)
	}
	var ups, downs []time.Duration
	for round := 0; round < cfg.LoadRounds; round++ {
		n.do(func() {
			for _, t := range taps {
				if err = n.addTap(t); err != nil {
					return
				}
			}
		})
		if err != nil {
			return up, down, fmt.Errorf("add taps: %w", err)
		}
		wall, err := burst(n, v.Up, taps, env)
		if err == nil {
			err = checkPorts(n, taps, br.Index)
		}
		if err != nil {
			return up, down, err
		}
		ups = append(ups, wall)
		wall, err = burst(n, v.Down, taps, env)
		if err == nil {
			err = checkPorts(n, taps, 0)
		}
		if err != nil {
			return up, down, err
		}
		downs = append(downs, wall)
		for _, t := range taps {
			if err := n.delLink(t); err != nil {
				return up, down, fmt.Errorf("delete %s: %w", t, err)
			}
		}
	}
	up = LoadResult{What: v.UpLabel, N: cfg.Load, Wall: durStat(ups)}
	down = LoadResult{What: v.DownLabel, N: cfg.Load, Wall: durStat(downs)}
	return up, down, nil
}

// burst starts prog on every tap at once, each from its own thread inside
// the namespace, and returns the time until the last one exited.
func burst(n *ns, prog string, taps []string, env []string) (time.Duration, error) {
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, len(taps))
	for i, t := range taps {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread() // never unlocked: the thread dies with us
			if err := netns.Set(n.nsh); err != nil {
				ready.Done()
				errs[i] = err
				return
			}
			var out bytes.Buffer
			cmd := newCmd([]string{prog, t}, env)
			cmd.Stderr = &out
			ready.Done()
			<-gate
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%s %s: %v: %s", filepath.Base(prog), t, err, bytes.TrimSpace(out.Bytes()))
			}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(gate)
	done.Wait()
	return time.Since(t0), errors.Join(errs...)
}

// checkPorts checks that every tap has the given master (0: none) and, when
// it has one, is up.
func checkPorts(n *ns, taps []string, master int) error {
	for _, t := range taps {
		l, err := n.h.LinkByName(t)
		if err != nil {
			return err
		}
		a := l.Attrs()
		if a.MasterIndex != master {
			return fmt.Errorf("%s: master %d, want %d", t, a.MasterIndex, master)
		}
		if master != 0 && a.RawFlags&unix.IFF_UP == 0 {
			return fmt.Errorf("%s: down after ifup", t)
		}
	}
	return nil
}

// inProcess makes the changes qemu-ifup and qemu-ifdown make, with the
// default port settings, through pkg/tap on n's link.Conn and times
// them: the kernel's share of a pair.
func inProcess(n *ns, name string) (time.Duration, error) {
	port := tap.Port{Bridge: "virbr0", MAC: tap.MACHigh, Promisc: true}
	t0 := time.Now()
	pl, err := tap.PlanUp(n.conn, name, port)
	if err != nil {
		return 0, err
	}
	if err := pl.Apply(n.conn, nil); err != nil {
		return 0, err
	}
	if pl, err = tap.PlanDown(n.conn, name, tap.Port{Promisc: true}); err != nil {
		return 0, err
	}
	if err := pl.Apply(n.conn, nil); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}
