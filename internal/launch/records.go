package launch

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// writeRecords leaves qemu-ifup the settings of every tap the launcher
// wired, refusing a tap that is not this VM's to take: one another
// launcher's record holds, or one already there under a name the launcher
// derived (a leftover, as libvirt refuses pre-existing taps).
func (r *run) writeRecords() error {
	conn, err := link.Open()
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer conn.Close()
	for i, t := range r.Taps {
		fail := func(err error) error {
			r.removeRecords(r.Taps[:i])
			return err
		}
		if pid := r.dir.RecordOwner(t.Ifname); pid != 0 {
			return fail(fmt.Errorf("netdev %s: tap %s is in use by another VM (qemu-launch pid %d)", t.ID, t.Ifname, pid))
		}
		if _, err := conn.ByName(t.Ifname); err == nil && t.Derived {
			return fail(fmt.Errorf("netdev %s: tap %s already exists: a leftover of an earlier run? Remove it with \"ip link delete %s\" (or name the tap with ifname=)", t.ID, t.Ifname, t.Ifname))
		}
		// A mark left by an earlier run that was killed is not ours.
		if err := r.dir.ClearUp(t.Ifname); err != nil {
			return fail(err)
		}
		if err := ifconf.WriteRecord(r.dir, t.Ifname, t.Settings); err != nil {
			return fail(err)
		}
		r.logf("%s: wrote record for netdev %s: %s", t.Ifname, t.ID, describeSettings(t.Settings))
	}
	return nil
}

// removeRecords removes the records of taps that this launcher wrote.
func (r *run) removeRecords(taps []qemuargs.Tap) {
	for _, t := range taps {
		if mine, _ := r.dir.RecordIsMine(t.Ifname); mine {
			ifconf.RemoveRecord(r.dir, t.Ifname)
		}
	}
}

// cleanup runs after QEMU has exited: a record of this launcher's still
// present means QEMU did not run the down-script for that tap (SIGKILL, a
// crash), so the launcher runs it, but only if the up-script ran for it
// (qemu-ifup's mark): otherwise QEMU never had the tap.
func (r *run) cleanup() error {
	if r.qmp != nil {
		r.qmp.Close()
	} else if r.qmpConn != nil {
		r.qmpConn.Close()
	}
	var errs []error
	for _, t := range r.Taps {
		mine, err := r.dir.RecordIsMine(t.Ifname)
		if err != nil {
			errs = append(errs, err)
		}
		if !mine {
			continue // QEMU's down-script took it, or it is not ours
		}
		if !r.dir.IsUp(t.Ifname) {
			// QEMU exited before its up-script ran for this tap: the
			// tap, if there is one by that name, is not this VM's.
			r.logf("%s: QEMU exited before its up-script ran; no qemu-ifdown", t.Ifname)
			if err := ifconf.RemoveRecord(r.dir, t.Ifname); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if r.User != nil {
			r.logf("%s: running %s on the tap the launcher opened", t.Ifname, r.cfg.IfDown)
		} else {
			r.logf("%s: QEMU did not run its down-script; running %s", t.Ifname, r.cfg.IfDown)
		}
		cmd := exec.Command(r.cfg.IfDown, t.Ifname)
		cmd.Env = r.environ()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w: %s", r.cfg.IfDown, t.Ifname, err, strings.TrimSpace(out.String())))
		} else if r.cfg.Verbose || r.User != nil {
			// In QEMU's place, show what it would have shown.
			r.cfg.Stderr.Write(out.Bytes())
		}
		if err := ifconf.RemoveRecord(r.dir, t.Ifname); err != nil {
			errs = append(errs, err)
		}
	}
	r.closeTaps()
	return errors.Join(errs...)
}
