package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// supervise waits for QEMU to exit, pinging systemd's watchdog while QEMU
// answers on QMP, and shuts the guest down in stages on SIGTERM, SIGINT
// or SIGHUP:
// QMP system_powerdown, SIGTERM after the shutdown timeout, SIGKILL after
// TermTimeout. A second signal skips to the next stage.
func (r *run) supervise(ctx context.Context) {
	w := r.watchdog()
	defer w.stop()
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
		case <-w.tick():
			r.pingWatchdog(ctx, w.interval)
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
