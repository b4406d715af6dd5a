package launch

import "github.com/coreos/go-systemd/v22/daemon"

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
