package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bridgelist"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/vmconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// precheck checks, before QEMU starts, what would otherwise fail only
// inside it, so that the user reads one line of ours rather than QEMU's
// "network script ... failed with status 256": the QEMU binary, and each
// bridge given for a tap the launcher wires (it exists and is a bridge).
// It returns the exit status for a failure: 127 for a binary not found.
func (p *Plan) precheck() (int, error) {
	if _, err := exec.LookPath(p.Binary); err != nil {
		hint := "name its path, or install it (Debian: apt install qemu-system-x86)"
		if strings.Contains(p.Binary, "/") {
			hint = "check the path"
		}
		cause := errors.Unwrap(err)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		return 127, fmt.Errorf("QEMU binary %s: %w: %s; QEMU not started", p.Binary, cause, hint)
	}
	var c *link.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	host := bridge.Host{OVS: &bridge.OVS{DB: p.cfg.Getenv(ifconf.EnvOVSDB)}}
	for _, t := range p.Taps {
		br := t.Settings.Port().Bridge
		if br == "" || !t.Settings.Has(ifconf.KeyBridge) {
			continue // qemu-ifup chooses, as it does for QEMU alone
		}
		if c == nil {
			var err error
			if c, err = link.Open(); err != nil {
				return 1, fmt.Errorf("open netlink: %w", err)
			}
		}
		if _, err := host.Find(c, br); err != nil {
			from := t.Settings.Origin(ifconf.KeyBridge).String()
			if errors.Is(err, link.ErrNotFound) {
				return 1, fmt.Errorf("netdev %s: bridge %s (from %s) not found; %s; QEMU not started", t.ID, br, from, bridgelist.Hint(c))
			}
			return 1, fmt.Errorf("netdev %s: bridge %s (from %s): %v; QEMU not started", t.ID, br, from, err)
		}
	}
	return 0, nil
}

// checkFileCPUs refuses, naming the VM file's line and key, CPUs of the
// file that are not online: the same check Prepare makes of the options,
// told in the file's terms (the user typed no --cpus).
// Keys whose option was given on the command line are skipped:
// overridden holds the options' names ("cpus", "iothread-cpus ID").
func checkFileCPUs(path string, vm *vmconf.VM, overridden map[string]bool) error {
	online, err := cpuset.Online()
	if err != nil {
		return err
	}
	var errs []error
	check := func(line int, key, what, fix string, cpus cpuset.Set) {
		if overridden[key] {
			return
		}
		if off := cpus.Minus(online); !off.Empty() {
			cpu := "CPU"
			if off.Count() > 1 {
				cpu = "CPUs"
			}
			errs = append(errs, fmt.Errorf("%s:%d: %s=%s: %s %s not online (online: %s); %s",
				path, line, what, cpus, cpu, off, online, fix))
		}
	}
	// The options that override the keys.
	if overridden["cpus"] {
		overridden["HostCPUs"] = true
	}
	if overridden["emulator-cpus"] {
		overridden["EmulatorCPUs"] = true
	}
	check(vm.Lines["HostCPUs"], "HostCPUs", "HostCPUs", "change HostCPUs= or override it with --cpus", vm.HostCPUs)
	check(vm.Lines["EmulatorCPUs"], "EmulatorCPUs", "EmulatorCPUs", "change EmulatorCPUs= or override it with --emulator-cpus", vm.EmulatorCPUs)
	for _, io := range vm.IO {
		check(io.Line, "iothread-cpus "+io.ID, "[IOThread] ID="+io.ID+" CPUs", "change CPUs= or override it with --iothread-cpus "+io.ID+"=LIST", io.CPUs)
	}
	for _, v := range vm.VCPU {
		check(v.Line, "", fmt.Sprintf("[VCPU] Index=%d Affinity", v.Index), "change Affinity=", v.Affinity)
	}
	return errors.Join(errs...)
}
