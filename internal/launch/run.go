package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/qmp"
)

// Run runs the configured VM and returns the exit status for qemu-launch:
// QEMU's own (128+N when signal N killed it), or 0 after a dry run. A
// non-nil error is the launcher's own failure; the status is then 1, or
// QEMU's when QEMU had already exited.
func Run(ctx context.Context, c *Config) (int, error) {
	if c.List {
		return List(c)
	}
	if err := closeStrayFds(qemuargs.NamedFds(c.Args)); err != nil {
		return 1, err
	}
	p, err := Prepare(ctx, c)
	if err != nil {
		return 1, err
	}
	if c.CheckHost {
		return p.CheckHost(c.Stdout)
	}
	if err := p.warnHost(); err != nil {
		return 1, err
	}
	for _, w := range p.warnings {
		fmt.Fprintf(c.Stderr, "qemu-launch: warning: %s\n", w)
	}
	if c.DryRun {
		return 0, p.Print(c.Stdout)
	}
	if code, err := p.precheck(); err != nil {
		return code, err
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
	dir     *rundir.Dir // the namespace's run directory

	vcpuTIDs map[int]int    // vCPU index -> thread, from QMP
	ioTIDs   map[string]int // I/O thread id -> thread, from QMP

	// tapFiles are the taps the launcher opened for a QEMU run as a user.
	tapFiles []*os.File
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
	if f, ok := p.cfg.Stdin.(*os.File); ok && isTerminal(f) {
		// QEMU, in a process group of its own, is in the terminal's
		// background unless it reads the terminal (see start): ignored
		// (as QEMU inherits it), SIGTTOU lets it write its output rather
		// than stop, and lets the launcher, then in the background,
		// hand the terminal over and take it back.
		signal.Ignore(unix.SIGTTOU, unix.SIGTTIN)
	}

	d, err := rundir.Open(p.RunDir)
	if errors.Is(err, fs.ErrPermission) {
		// The launcher's locks and records are root's (package rundir).
		return 1, fmt.Errorf("%w (qemu-launch runs as root; --user runs QEMU itself as another user)", err)
	}
	if err != nil {
		return 1, err
	}
	defer d.Close()
	r.dir = d
	// One VM name runs once (per network namespace, as its tap names):
	// a second launch of a running VM would take the first one's taps.
	lk, err := d.Lock(rundir.VMLock(p.Name), 0)
	if err != nil {
		var busy *rundir.BusyError
		if errors.As(err, &busy) {
			holder := "another qemu-launch"
			if busy.Pid > 0 {
				holder = fmt.Sprintf("qemu-launch pid %d", busy.Pid)
			}
			return 1, fmt.Errorf("VM %s is already running (%s); not starting it twice", qemuargs.Shown(p.Name), holder)
		}
		return 1, err
	}
	defer lk.Release()
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

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
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

// setup connects to QMP, places the vCPU threads (and the others, when
// asked) and resumes the guest.
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
	qctx, qcancel := context.WithTimeout(ctx, r.qmpTimeout())
	defer qcancel()
	c, err := qmp.New(qctx, r.qmpConn)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("QEMU did not answer on its QMP monitor within %s", r.qmpTimeout())
		}
		return fmt.Errorf("connecting to QEMU's QMP monitor: %w", err)
	}
	r.qmp = c
	c.Events = func(e qmp.Event) { r.logf("QEMU event %s", e.Name) }
	if err := r.pin(ctx); err != nil {
		return err
	}
	if err := r.place(ctx); err != nil {
		return err
	}
	if r.AddedS {
		if err := c.Cont(ctx); err != nil {
			return fmt.Errorf("resuming the guest: %w", err)
		}
		r.logf("guest resumed")
		r.recheck()
	}
	state := "running"
	if r.Paused {
		state = "paused (-S)"
	}
	r.notify(fmt.Sprintf("READY=1\nSTATUS=VM %s %s, QEMU pid %d", r.Name, state, r.cmd.Process.Pid))
	return nil
}

// status is QEMU's exit status, 128+N for death by signal N.
func (r *run) status() int {
	ps := r.cmd.ProcessState
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
