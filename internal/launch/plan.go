package launch

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/shellwords"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// qmpFd is the descriptor of the QMP socket in QEMU: the first of
// exec.Cmd.ExtraFiles.
const qmpFd = 3

// A Plan is everything a run will do, worked out before anything starts.
type Plan struct {
	*qemuargs.Result
	Binary string
	CPUs   cpuset.Set // empty: QEMU inherits qemu-launch's affinity
	// EmulatorCPUs and IOThreadCPUs are Config's, checked.
	EmulatorCPUs cpuset.Set
	IOThreadCPUs map[string]cpuset.Set
	// VCPUCPUs are where the vCPU threads without their own affinity
	// run: CPUs, else qemu-launch's own CPUs, which QEMU inherits.
	VCPUCPUs cpuset.Set
	RunDir   string   // where the tap records go
	User     *account // nil: QEMU runs as the launcher's user
	cfg      *Config
	// ports are the wired taps' ports as qemu-ifup will make them;
	// warnings what the launcher warns of before it starts QEMU.
	ports    []tapPort
	warnings []string
}

// Prepare checks the configuration against this host and rewrites QEMU's
// command line. It starts nothing; it runs "QEMU -help" when the command
// uses -realtime or -vcpu.
func Prepare(ctx context.Context, c *Config) (*Plan, error) {
	online, err := cpuset.Online()
	if err != nil {
		return nil, err
	}
	if err := allOnline("--cpus", c.CPUs, online); err != nil {
		return nil, err
	}
	if err := allOnline("--emulator-cpus", c.EmulatorCPUs, online); err != nil {
		return nil, err
	}
	for _, id := range slices.Sorted(maps.Keys(c.IOThreadCPUs)) {
		if err := allOnline("--iothread-cpus "+id, c.IOThreadCPUs[id], online); err != nil {
			return nil, err
		}
	}
	var (
		once sync.Once
		caps qemuargs.Caps
		perr error
	)
	probe := func() (qemuargs.Caps, error) {
		once.Do(func() {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			caps, perr = qemuargs.Probe(pctx, c.Binary)
		})
		return caps, perr
	}
	var acct *account
	fdBase := 0
	if c.User != "" {
		if acct, err = lookupAccount(c.User); err != nil {
			return nil, err
		}
		fdBase = tapFd
	}
	res, err := qemuargs.Rewrite(c.Args, qemuargs.Options{
		Caps:     probe,
		IfUp:     c.IfUp,
		IfDown:   c.IfDown,
		IsIfUp:   func(script string) bool { return sameFile(script, c.IfUp) },
		Bridge:   c.Bridge,
		Settings: c.Settings,
		QMPFd:    qmpFd,
		// Threads are placed before the guest runs.
		PlaceThreads: !c.EmulatorCPUs.Empty() || len(c.IOThreadCPUs) > 0,
		TapFd:        fdBase,
	})
	if err != nil {
		return nil, err
	}
	allowed, what := online, "online CPUs"
	if !c.CPUs.Empty() {
		allowed, what = c.CPUs, "--cpus"
	}
	for _, p := range res.Pins {
		if out := p.CPUs.Minus(allowed); !out.Empty() {
			return nil, fmt.Errorf("-vcpu %d: affinity %s (CPUs %s) reaches CPU %s, outside %s %s",
				p.VCPU, p.CPUs.Mask(), p.CPUs, out, what, allowed)
		}
	}
	if out := c.EmulatorCPUs.Minus(allowed); !out.Empty() {
		return nil, fmt.Errorf("--emulator-cpus %s: CPU %s is outside %s %s", c.EmulatorCPUs, out, what, allowed)
	}
	for _, id := range slices.Sorted(maps.Keys(c.IOThreadCPUs)) {
		cpus := c.IOThreadCPUs[id]
		if !slices.Contains(res.IOThreads, id) {
			return nil, fmt.Errorf("--iothread-cpus %s: the command has no -object iothread,id=%s", id, id)
		}
		if out := cpus.Minus(allowed); !out.Empty() {
			return nil, fmt.Errorf("--iothread-cpus %s=%s: CPU %s is outside %s %s", id, cpus, out, what, allowed)
		}
	}
	vcpus := c.CPUs
	if vcpus.Empty() {
		// What QEMU would inherit from qemu-launch.
		if vcpus, err = sched.Affinity(0); err != nil {
			return nil, err
		}
	}
	p := &Plan{
		Result:       res,
		Binary:       c.Binary,
		CPUs:         c.CPUs,
		EmulatorCPUs: c.EmulatorCPUs,
		IOThreadCPUs: c.IOThreadCPUs,
		VCPUCPUs:     vcpus,
		User:         acct,
		RunDir:       ifconf.Env{Getenv: c.Getenv}.RunDir(),
		cfg:          c,
	}
	p.foresee()
	return p, nil
}

// allOnline refuses CPUs of an option that are not online.
func allOnline(option string, cpus, online cpuset.Set) error {
	off := cpus.Minus(online)
	if off.Empty() {
		return nil
	}
	cpu := "CPU"
	if off.Count() > 1 {
		cpu = "CPUs"
	}
	return fmt.Errorf("%s %s: %s %s not online (online: %s)", option, cpus, cpu, off, online)
}

// placesThreads says whether the launcher places QEMU's threads beyond
// the vCPUs.
func (p *Plan) placesThreads() bool {
	return !p.EmulatorCPUs.Empty() || len(p.IOThreadCPUs) > 0
}

// startCPUs are the CPUs QEMU starts on, which every thread it creates
// inherits until placed: the emulator CPUs when they are given.
func (p *Plan) startCPUs() cpuset.Set {
	if !p.EmulatorCPUs.Empty() {
		return p.EmulatorCPUs
	}
	return p.CPUs
}

// Argv is QEMU's whole command line.
func (p *Plan) Argv() []string {
	return append([]string{p.Binary}, p.Args...)
}

// Actions describes, one line each, what the launcher does itself beside
// running QEMU.
func (p *Plan) Actions() []string {
	var a []string
	switch {
	case !p.EmulatorCPUs.Empty():
		a = append(a, fmt.Sprintf("start QEMU on CPUs %s, the emulator CPUs: its main loop, RCU and worker threads, and the threads they start later, inherit them", p.EmulatorCPUs))
	case !p.CPUs.Empty():
		a = append(a, fmt.Sprintf("start QEMU with every thread on CPUs %s", p.CPUs))
	}
	a = append(a, p.userActions()...)
	// Records go to this network namespace's directory (package rundir).
	dir := filepath.Join(p.RunDir, "net-*")
	if id, err := rundir.NetnsID(); err == nil {
		dir = filepath.Join(p.RunDir, rundir.NetnsDir(id))
	}
	for _, t := range p.Taps {
		a = append(a, fmt.Sprintf("write %s for qemu-ifup (netdev %s): %s",
			filepath.Join(dir, t.Ifname+".conf"), t.ID, describeSettings(t.Settings)))
	}
	a = append(a, p.mtuActions()...)
	for _, pin := range p.Pins {
		where := "its CPUs unchanged"
		if !pin.CPUs.Empty() {
			where = "CPUs " + pin.CPUs.String()
		}
		pol := "SCHED_OTHER"
		if pin.Prio > 0 {
			pol = fmt.Sprintf("SCHED_FIFO priority %d", pin.Prio)
		}
		a = append(a, fmt.Sprintf("put the thread of vCPU %d on %s under %s (QMP query-cpus-fast, then read back)", pin.VCPU, where, pol))
	}
	if !p.EmulatorCPUs.Empty() {
		var rest cpuset.Set
		for i := range p.VCPUs {
			if !slices.ContainsFunc(p.Pins, func(pin qemuargs.Pin) bool { return pin.VCPU == i && !pin.CPUs.Empty() }) {
				rest.Add(i)
			}
		}
		if !rest.Empty() {
			a = append(a, fmt.Sprintf("put the threads of vCPUs %s (no -vcpu affinity) on CPUs %s (QMP query-cpus-fast)", rest, p.VCPUCPUs))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.IOThreadCPUs)) {
		a = append(a, fmt.Sprintf("put I/O thread %s on CPUs %s (QMP query-iothreads, then read back)", id, p.IOThreadCPUs[id]))
	}
	if !p.EmulatorCPUs.Empty() {
		a = append(a, fmt.Sprintf("read every thread of QEMU back from /proc: the vCPUs and placed I/O threads where put, all others on CPUs %s", p.EmulatorCPUs))
	}
	switch {
	case p.AddedS:
		a = append(a, "resume the guest (QMP cont)")
	case p.Paused:
		a = append(a, "leave the guest paused, as -S asks")
	}
	if p.placesThreads() && p.AddedS {
		a = append(a, "after the guest resumes: read every thread back again, and put threads found elsewhere where they belong")
	}
	a = append(a, fmt.Sprintf("on SIGTERM, SIGINT or SIGHUP: QMP system_powerdown, SIGTERM after %s, SIGKILL %s later",
		p.cfg.shutdownTimeout(), TermTimeout))
	for _, t := range p.Taps {
		a = append(a, fmt.Sprintf("after QEMU exits: run %s %s if its record is still there", p.cfg.IfDown, t.Ifname))
	}
	return a
}

func describeSettings(s ifconf.Settings) string {
	if s.IsZero() {
		return "no settings (qemu-ifup uses " + ifconf.DefaultConfigPath + " or its defaults)"
	}
	return s.String()
}

// Print writes the dry run: QEMU's command line as one shell-quoted line,
// then one line per action of the launcher.
func (p *Plan) Print(w io.Writer) error {
	var b strings.Builder
	b.WriteString(shellwords.Join(p.Argv()))
	b.WriteByte('\n')
	for _, a := range p.Actions() {
		b.WriteString(a)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sameFile reports whether a and b name one file (say /etc/qemu-ifup, a
// link to the qemu-ifup next to qemu-launch).
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
