package launch

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
)

// The terminal's Ctrl-C and hang-up go to its foreground process group:
// QEMU, in a group of its own, is not in it, so the launcher alone gets
// the signal and shuts the guest down in stages (powerdown, then SIGTERM)
// rather than QEMU dying of it at once.
func TestTerminalSignalsReachLauncherOnly(t *testing.T) {
	requireQEMU(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGINT, "interrupt"}, {syscall.SIGHUP, "hangup"}} {
		t.Run(tc.name, func(t *testing.T) {
			l := start(t, nil, nil, "-v", "--shutdown-timeout", "1s", qemu, "-accel", "tcg", "-display", "none",
				"-nodefaults", "-m", "64")
			l.waitFor("READY=1")
			if pgid, _ := syscall.Getpgid(l.qemuPid()); pgid == l.cmd.Process.Pid {
				t.Errorf("QEMU is in the launcher's process group %d", pgid)
			}
			// As the terminal does: the whole foreground group.
			if err := syscall.Kill(-l.cmd.Process.Pid, tc.sig); err != nil {
				t.Fatal(err)
			}
			if code := l.wait(); code != 0 {
				t.Errorf("exit status %d, want QEMU's 0", code)
			}
			stderr := l.stderr.String()
			if want := "qemu-launch: " + tc.name + ": asked the guest to power down (QMP system_powerdown)"; !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
			if bad := "terminating on signal " + strconv.Itoa(int(tc.sig)) + " "; strings.Contains(stderr, bad) {
				t.Errorf("QEMU got the terminal's signal itself (%q):\n%s", bad, stderr)
			}
		})
	}
}

// One VM name runs once: a second launch of a running VM fails before
// QEMU starts, naming the VM and the running launcher's pid, and leaves the
// first VM's tap and record alone.
func TestSecondLaunchRefused(t *testing.T) {
	requireQEMU(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	first := start(t, ns, nil, append([]string{"--bridge", "br-a", "--shutdown-timeout", "1s"}, tapArgs("n0")...)...)
	first.waitFor("READY=1")
	rec := first.record("tw-n0")
	env := []string{"QEMU_TAP_HELPERS_RUNDIR=" + first.runDir}
	second := start(t, ns, env, append([]string{"-v", "--bridge", "br-a"}, tapArgs("n0")...)...)
	if code := second.wait(); code != 1 {
		t.Errorf("second launch: exit %d, want 1", code)
	}
	want := "qemu-launch: VM tw is already running (qemu-launch pid " + strconv.Itoa(first.cmd.Process.Pid) + "); not starting it twice\n"
	if got := second.stderr.String(); got != want {
		t.Errorf("second launch: stderr %q, want %q", got, want)
	}
	if m := ns.MasterName(t, ns.Link(t, "tw-n0")); m != "br-a" {
		t.Errorf("tw-n0: master %q, want br-a", m)
	}
	if got := first.record("tw-n0"); got != rec || rec == "" {
		t.Errorf("the running VM's record changed: %q, was %q", got, rec)
	}
	first.signal(syscall.SIGTERM)
	first.wait()
}

// A tap already there under the name the launcher would give it is
// refused before QEMU starts, naming it and how to remove a leftover.
func TestLeftoverTapRefused(t *testing.T) {
	requireQEMU(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	before := ns.AddTap(t, "tw-n0")
	l := start(t, ns, nil, append([]string{"--bridge", "br-a"}, tapArgs("n0")...)...)
	if code := l.wait(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := `qemu-launch: netdev n0: tap tw-n0 already exists: a leftover of an earlier run? Remove it with "ip link delete tw-n0" (or name the tap with ifname=)` + "\n"
	if got := l.stderr.String(); got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	after := ns.Link(t, "tw-n0")
	if after.Attrs().Index != before.Attrs().Index || after.Attrs().MasterIndex != 0 {
		t.Errorf("tw-n0 changed: %+v", after.Attrs())
	}
	if left, _ := filepath.Glob(filepath.Join(l.runDir, "*", "*")); len(left) != 0 {
		t.Errorf("left in the run directory: %q", left)
	}
}

// A tap named with ifname= that another process holds: QEMU fails to
// open it (EBUSY) before any up-script ran, so the launcher runs no
// qemu-ifdown for it (which would take the holder's tap off its bridge)
// and removes only the record it wrote.
func TestNoIfdownBeforeUpScript(t *testing.T) {
	requireQEMU(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	// Held open as a running QEMU holds its tap, on its bridge.
	var tun *os.File
	err := ns.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		tun = os.NewFile(uintptr(fd), "tun")
		ifr, err := unix.NewIfreq("held0")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	if err := ns.Handle.LinkSetMaster(ns.Link(t, "held0"), ns.Link(t, "br-a")); err != nil {
		t.Fatal(err)
	}
	args := []string{"-v", "--bridge", "br-a", qemu, "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "64",
		"-name", "tw", "-netdev", "tap,id=n0,ifname=held0", "-device", "e1000,netdev=n0"}
	l := start(t, ns, nil, args...)
	if code := l.wait(); code == 0 {
		t.Errorf("exit 0, want QEMU's failure")
	}
	stderr := l.stderr.String()
	if !strings.Contains(stderr, "qemu-launch: held0: QEMU exited before its up-script ran; no qemu-ifdown") ||
		strings.Contains(stderr, "running ") {
		t.Errorf("stderr:\n%s\nwant the launcher to say it runs no qemu-ifdown", stderr)
	}
	if m := ns.MasterName(t, ns.Link(t, "held0")); m != "br-a" {
		t.Errorf("held0: master %q, want br-a still", m)
	}
	if rec := l.record("held0"); rec != "" {
		t.Errorf("the launcher's record left behind: %q", rec)
	}

	// A record another live launcher wrote for the tap: refused before
	// QEMU starts, and the record stays.
	base := filepath.Join(t.TempDir(), "run")
	err = ns.Do(func() error {
		d, err := rundir.Open(base)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.WriteRecord("held0", []byte("[Interface]\nBridge=br-a\n"))
	})
	if err != nil {
		t.Fatal(err)
	}
	l = start(t, ns, []string{"QEMU_TAP_HELPERS_RUNDIR=" + base}, args...)
	if code := l.wait(); code != 1 {
		t.Errorf("with another VM's record: exit %d, want 1", code)
	}
	want := "qemu-launch: netdev n0: tap held0 is in use by another VM (qemu-launch pid " + strconv.Itoa(os.Getpid()) + ")\n"
	if got := l.stderr.String(); got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(ns.RunDir(t, base), "held0.conf")); err != nil {
		t.Errorf("the other VM's record: %v", err)
	}
}
