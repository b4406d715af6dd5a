package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/qmp"
)

// Run runs the configured VM and returns the exit status for qemu-launch:
// QEMU's own (128+N when signal N killed it), or 0 after a dry run. A
// non-nil error is the launcher's own failure; the status is then 1, or
// QEMU's when QEMU had already exited.
func Run(ctx context.Context, c *Config) (int, error) {
	p, err := Prepare(ctx, c)
	if err != nil {
		return 1, err
	}
	if c.DryRun {
		return 0, p.Print(c.Stdout)
	}
	return p.Run(ctx)
}

// A run is one QEMU process and what the launcher holds for it.
type run struct {
	*Plan
	cmd     *exec.Cmd
	exited  chan struct{} // closed when QEMU has exited
	qmpConn net.Conn
	qmp     *qmp.Client
	sigs    chan os.Signal
}

func (p *Plan) logf(format string, args ...any) {
	if p.cfg.Verbose {
		fmt.Fprintf(p.cfg.Stderr, "qemu-launch: "+format+"\n", args...)
	}
}

// Run starts QEMU as planned and supervises it until it exits.
func (p *Plan) Run(ctx context.Context) (int, error) {
	r := &run{Plan: p, exited: make(chan struct{}), sigs: make(chan os.Signal, 4)}
	// Catch the signals before QEMU starts, so none is lost in start-up;
	// leave ignored ones ignored (nohup, a background job's SIGINT).
	for _, sig := range []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP} {
		if !signal.Ignored(sig) {
			signal.Notify(r.sigs, sig)
		}
	}
	defer signal.Stop(r.sigs)

	if err := r.writeRecords(); err != nil {
		return 1, err
	}
	if err := r.start(); err != nil {
		r.removeRecords(r.Taps)
		// As env(1) and shells say it: 127 not found, 126 not runnable.
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return 127, err
		}
		return 126, err
	}
	if err := r.setup(ctx); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// QEMU closed its monitor: it is exiting by itself.
			select {
			case <-r.exited:
			case <-time.After(TermTimeout):
			}
		}
		if r.hasExited() {
			// QEMU exiting by itself (a bad argument, a failed
			// up-script) has said why on its stderr: pass its
			// status on. Only a signal needs saying.
			r.logf("QEMU exited during start-up: %v", r.cmd.ProcessState)
			var serr error
			if ws, ok := r.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				serr = fmt.Errorf("QEMU was killed by %v during start-up", ws.Signal())
			}
			return r.status(), errors.Join(serr, r.cleanup())
		}
		r.logf("stopping QEMU: %v", err)
		r.kill(ctx)
		if errors.Is(err, errInterrupted) {
			return r.status(), r.cleanup()
		}
		return 1, errors.Join(err, r.cleanup())
	}
	r.supervise(ctx)
	return r.status(), r.cleanup()
}

// writeRecords leaves qemu-ifup the settings of every tap the launcher
// wired, refusing a tap name another VM holds.
func (r *run) writeRecords() error {
	for i, t := range r.Taps {
		// A derived name in use, or a name in use with a record, is
		// another VM's tap: QEMU would fail, and the cleanup would
		// take that VM's record.
		// Looked up by name: net.InterfaceByName would dump every link.
		if _, err := netlink.LinkByName(t.Ifname); err == nil {
			rec, _ := ifconf.ReadRecord(r.RunDir, t.Ifname)
			if t.Derived || rec != nil {
				r.removeRecords(r.Taps[:i])
				return fmt.Errorf("netdev %s: interface %s exists already (another VM named %q?)", t.ID, t.Ifname, r.Name)
			}
		}
		if err := ifconf.WriteRecord(r.RunDir, t.Ifname, t.Settings); err != nil {
			r.removeRecords(r.Taps[:i])
			return err
		}
		r.logf("%s: wrote record for netdev %s: %s", t.Ifname, t.ID, describeSettings(t.Settings))
	}
	return nil
}

func (r *run) removeRecords(taps []qemuargs.Tap) {
	for _, t := range taps {
		ifconf.RemoveRecord(r.RunDir, t.Ifname)
	}
}

// environ is QEMU's environment: the launcher's without systemd's
// notification variables, which belong to the launcher alone.
func (r *run) environ() []string {
	var env []string
	for _, kv := range r.cfg.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start starts QEMU with its QMP socket, inside r.CPUs.
func (r *run) start() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("creating the QMP socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "qmp"), os.NewFile(uintptr(fds[1]), "qmp-qemu")
	defer theirs.Close()
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return fmt.Errorf("creating the QMP socket: %w", err)
	}

	argv := r.Argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.cfg.Stdin, r.cfg.Stdout, r.cfg.Stderr
	cmd.Env = r.environ()
	cmd.ExtraFiles = []*os.File{theirs} // fd 3, qmpFd
	// Should qemu-launch die, QEMU shuts down cleanly rather than run on
	// unsupervised.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := startWithin(cmd, r.CPUs); err != nil {
		conn.Close()
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	r.cmd = cmd
	r.logf("started QEMU, pid %d", cmd.Process.Pid)
	go func() {
		cmd.Wait() // its error says no more than cmd.ProcessState
		close(r.exited)
	}()
	r.qmpConn = conn
	return nil
}

// startWithin starts cmd with the CPU affinity cpus, which every thread
// QEMU creates inherits: the fork happens on this OS thread, confined
// to cpus for the moment.
func startWithin(cmd *exec.Cmd, cpus cpuset.Set) error {
	if cpus.Empty() {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("reading this thread's affinity: %w", err)
	}
	want := cpus.Unix()
	if err := unix.SchedSetaffinity(0, &want); err != nil {
		return fmt.Errorf("setting the affinity to CPUs %s: %w", cpus, err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil {
		return errors.Join(err, fmt.Errorf("restoring this thread's affinity: %w", rerr))
	}
	return err
}

func (r *run) hasExited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// untilExit returns a context that ends when QEMU exits or ctx ends.
func (r *run) untilExit(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-r.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// setup connects to QMP, places the vCPU threads and resumes the guest.
// A signal during setup ends it with errInterrupted: the guest has not
// run yet, so there is nothing to power down.
func (r *run) setup(ctx context.Context) error {
	ctx, cancel := r.untilExit(ctx)
	sigc, done := make(chan os.Signal, 1), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case sig := <-r.sigs:
			sigc <- sig
			cancel()
		case <-ctx.Done():
		}
	}()
	err := r.connectAndPin(ctx)
	cancel()
	<-done
	select {
	case sig := <-sigc:
		if err == nil {
			r.sigs <- sig // for supervise
			return nil
		}
		return fmt.Errorf("%w by %v", errInterrupted, sig)
	default:
		return err
	}
}

var errInterrupted = errors.New("start-up interrupted")

func (r *run) connectAndPin(ctx context.Context) error {
	qctx, qcancel := context.WithTimeout(ctx, r.cfg.qmpTimeout())
	defer qcancel()
	c, err := qmp.New(qctx, r.qmpConn)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("QEMU did not answer on its QMP monitor within %s", r.cfg.qmpTimeout())
		}
		return fmt.Errorf("connecting to QEMU's QMP monitor: %w", err)
	}
	r.qmp = c
	c.Events = func(e qmp.Event) { r.logf("QEMU event %s", e.Name) }
	if err := r.pin(ctx); err != nil {
		return err
	}
	if r.AddedS {
		if err := c.Cont(ctx); err != nil {
			return fmt.Errorf("resuming the guest: %w", err)
		}
		r.logf("guest resumed")
	}
	state := "running"
	if r.Paused {
		state = "paused (-S)"
	}
	r.notify(fmt.Sprintf("READY=1\nSTATUS=VM %s %s, QEMU pid %d", r.Name, state, r.cmd.Process.Pid))
	return nil
}

// pin places each vCPU thread as its -vcpu option asked and reads it back.
func (r *run) pin(ctx context.Context) error {
	if len(r.Pins) == 0 {
		return nil
	}
	cpus, err := r.qmp.QueryCPUsFast(ctx)
	if err != nil {
		return fmt.Errorf("listing vCPU threads: %w", err)
	}
	tids := map[int]int{}
	for _, c := range cpus {
		tids[c.Index] = c.ThreadID
	}
	pid := r.cmd.Process.Pid
	pinned := map[int]int{} // thread -> vCPU
	for _, p := range r.Pins {
		tid, ok := tids[p.VCPU]
		if !ok {
			return fmt.Errorf("vCPU %d: QEMU lists no thread for it", p.VCPU)
		}
		if other, dup := pinned[tid]; dup {
			// Single-threaded TCG runs every vCPU on one thread.
			return fmt.Errorf("vCPUs %d and %d share thread %d: they cannot be placed apart", other, p.VCPU, tid)
		}
		pinned[tid] = p.VCPU
		if tid == pid {
			// A single-threaded accelerator runs vCPUs on the main
			// loop's thread: pinning it would pin all of QEMU.
			return fmt.Errorf("vCPU %d: QEMU runs it on its main thread %d, which cannot be pinned alone", p.VCPU, tid)
		}
		if !p.CPUs.Empty() {
			if err := sched.SetAffinity(tid, p.CPUs); err != nil {
				return fmt.Errorf("vCPU %d: %w", p.VCPU, err)
			}
		}
		if err := sched.SetPriority(tid, p.Prio); err != nil {
			return fmt.Errorf("vCPU %d: %w", p.VCPU, err)
		}
		th, err := sched.Read(pid, tid)
		if err != nil {
			return fmt.Errorf("vCPU %d: %w", p.VCPU, err)
		}
		wantPol := sched.Other
		if p.Prio > 0 {
			wantPol = sched.FIFO
		}
		if (!p.CPUs.Empty() && !th.CPUs.Equal(p.CPUs)) || th.Policy != wantPol || th.Prio != p.Prio {
			return fmt.Errorf("vCPU %d: reads back as %v", p.VCPU, th)
		}
		r.logf("vCPU %d: %v", p.VCPU, th)
	}
	return nil
}

// notify sends state to systemd when it runs qemu-launch as a notify
// service; without NOTIFY_SOCKET it does nothing.
func (r *run) notify(state string) {
	if r.cfg.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		r.logf("notifying systemd: %v", err)
	}
}

// supervise waits for QEMU to exit, pinging systemd's watchdog while QEMU
// answers on QMP, and shuts the guest down in stages on SIGTERM, SIGINT
// or SIGHUP:
// QMP system_powerdown, SIGTERM after the shutdown timeout, SIGKILL after
// TermTimeout. A second signal skips to the next stage.
func (r *run) supervise(ctx context.Context) {
	var tick <-chan time.Time
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		r.logf("systemd watchdog: %v", err)
	}
	if interval > 0 {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		tick = t.C
	}
	s := stopper{proc: r.cmd.Process, shutdown: r.cfg.shutdownTimeout(), term: TermTimeout,
		powerdown: func() error {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return r.qmp.SystemPowerdown(pctx)
		}}
	for {
		select {
		case <-r.exited:
			return
		case sig := <-r.sigs:
			if s.stage == 0 {
				r.notify("STOPPING=1")
			}
			r.logf("%v: %s", sig, s.next())
		case <-s.timer():
			r.logf("QEMU still runs: %s", s.next())
		case <-tick:
			wctx, cancel := context.WithTimeout(ctx, interval/2)
			if _, err := r.qmp.QueryStatus(wctx); err == nil {
				r.notify("WATCHDOG=1")
			} else {
				r.logf("no watchdog ping: %v", err)
			}
			cancel()
		}
	}
}

// A stopper walks QEMU through the stages of a shutdown.
type stopper struct {
	proc      *os.Process
	powerdown func() error
	shutdown  time.Duration // from powerdown to SIGTERM
	term      time.Duration // from SIGTERM to SIGKILL

	stage int // 0 running, 1 powering down, 2 terminated, 3 killed
	t     *time.Timer
}

// next moves to the next stage and says what it did.
func (s *stopper) next() string {
	if s.t != nil {
		s.t.Stop()
		s.t = nil
	}
	s.stage++
	switch s.stage {
	case 1:
		err := s.powerdown()
		if err == nil {
			s.t = time.NewTimer(s.shutdown)
			return fmt.Sprintf("asked the guest to power down (QMP system_powerdown); SIGTERM in %s", s.shutdown)
		}
		s.stage++
		return s.signal(unix.SIGTERM, fmt.Sprintf("powerdown failed (%v); ", err))
	case 2:
		return s.signal(unix.SIGTERM, "")
	case 3:
		return s.signal(unix.SIGKILL, "")
	}
	s.stage = 3
	return "waiting for QEMU to exit"
}

func (s *stopper) signal(sig unix.Signal, why string) string {
	if err := s.proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Sprintf("%ssending %v to QEMU: %v", why, sig, err)
	}
	if sig == unix.SIGTERM {
		s.t = time.NewTimer(s.term)
		return fmt.Sprintf("%ssent SIGTERM to QEMU; SIGKILL in %s", why, s.term)
	}
	return why + "sent SIGKILL to QEMU"
}

func (s *stopper) timer() <-chan time.Time {
	if s.t == nil {
		return nil
	}
	return s.t.C
}

// kill stops a QEMU whose setup failed: QMP quit, else SIGTERM, then
// SIGKILL.
func (r *run) kill(ctx context.Context) {
	if r.qmp != nil {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.qmp.Quit(qctx)
		cancel()
		if err == nil {
			select {
			case <-r.exited:
				return
			case <-time.After(TermTimeout):
			}
		}
	}
	s := stopper{proc: r.cmd.Process, stage: 1, term: TermTimeout}
	for !r.hasExited() && s.stage < 3 {
		s.next()
		select {
		case <-r.exited:
		case <-s.timer():
		}
	}
	<-r.exited
}

// status is QEMU's exit status, 128+N for death by signal N.
func (r *run) status() int {
	ps := r.cmd.ProcessState
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// cleanup runs after QEMU has exited: a record still present means QEMU
// did not run the down-script for that tap (SIGKILL, a crash, or the tap
// never came up), so the launcher runs it.
func (r *run) cleanup() error {
	if r.qmp != nil {
		r.qmp.Close()
	} else if r.qmpConn != nil {
		r.qmpConn.Close()
	}
	var errs []error
	for _, t := range r.Taps {
		rec, err := ifconf.ReadRecord(r.RunDir, t.Ifname)
		if err != nil {
			errs = append(errs, err)
		}
		if rec == nil && err == nil {
			continue
		}
		r.logf("%s: QEMU did not run its down-script; running %s", t.Ifname, r.cfg.IfDown)
		cmd := exec.Command(r.cfg.IfDown, t.Ifname)
		cmd.Env = r.environ()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w: %s", r.cfg.IfDown, t.Ifname, err, strings.TrimSpace(out.String())))
		} else if r.cfg.Verbose {
			r.cfg.Stderr.Write(out.Bytes())
		}
		if err := ifconf.RemoveRecord(r.RunDir, t.Ifname); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
