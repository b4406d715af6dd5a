package launch

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

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

// A watchdog is systemd's service watchdog as the launcher keeps it: a
// ping every half interval, as sd_watchdog_enabled(3) advises.
type watchdog struct {
	interval time.Duration // 0: no watchdog asked for
	t        *time.Ticker
}

// watchdog reads WATCHDOG_USEC (and WATCHDOG_PID) from the environment.
func (r *run) watchdog() watchdog {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		r.logf("systemd watchdog: %v", err)
	}
	if interval <= 0 {
		return watchdog{}
	}
	return watchdog{interval: interval, t: time.NewTicker(interval / 2)}
}

// tick fires when a ping is due; never without a watchdog.
func (w watchdog) tick() <-chan time.Time {
	if w.t == nil {
		return nil
	}
	return w.t.C
}

func (w watchdog) stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// pingWatchdog pings systemd's watchdog if QEMU answers on QMP in time:
// a hung QEMU stops the pings and lets systemd act.
func (r *run) pingWatchdog(ctx context.Context, interval time.Duration) {
	wctx, cancel := context.WithTimeout(ctx, interval/2)
	defer cancel()
	if _, err := r.qmp.QueryStatus(wctx); err == nil {
		r.notify("WATCHDOG=1")
	} else {
		r.logf("no watchdog ping: %v", err)
	}
}
