package launch

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
)

// writeRecords leaves qemu-ifup the settings of every tap the launcher
// wired, refusing a tap name another VM holds.
func (r *run) writeRecords() error {
	for i, t := range r.Taps {
		// A derived name in use, or a name in use with a record, is
		// another VM's tap: QEMU would fail, and the cleanup would
		// take that VM's record.
		// Looked up by name: net.InterfaceByName would dump every link.
		if _, err := netlink.LinkByName(t.Ifname); err == nil {
			rec, _ := ifconf.ReadRecord(r.dir, t.Ifname, nil)
			if t.Derived || rec != nil {
				r.removeRecords(r.Taps[:i])
				return fmt.Errorf("netdev %s: interface %s exists already (another VM named %q?)", t.ID, t.Ifname, r.Name)
			}
		}
		if err := ifconf.WriteRecord(r.dir, t.Ifname, t.Settings); err != nil {
			r.removeRecords(r.Taps[:i])
			return err
		}
		r.logf("%s: wrote record for netdev %s: %s", t.Ifname, t.ID, describeSettings(t.Settings))
	}
	return nil
}

func (r *run) removeRecords(taps []qemuargs.Tap) {
	for _, t := range taps {
		ifconf.RemoveRecord(r.dir, t.Ifname)
	}
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
		rec, err := ifconf.ReadRecord(r.dir, t.Ifname, nil)
		if err != nil {
			errs = append(errs, err)
		}
		if rec == nil && err == nil {
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
