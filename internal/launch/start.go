package launch

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// environ is the environment of a QEMU run as root, and of the helpers:
// the launcher's without systemd's notification variables, which belong
// to the launcher alone. A QEMU run as a user gets a fixed one instead
// (userEnviron).
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

// closeStrayFds marks every descriptor from 3 up close-on-exec but those
// in keep. The launcher's own are (Go opens them so), but one it inherited
// without the flag (an open file of the shell that ran it) would reach
// QEMU, the helpers and the "QEMU -help" probe: QEMU gets only its
// standard streams, the QMP socket, the taps, and the descriptors its
// command line names (keep).
func closeStrayFds(keep []int) error {
	keep = slices.Sorted(slices.Values(keep))
	from := uint(3)
	for _, fd := range append(keep, -1) {
		if fd >= 0 && uint(fd) < from {
			continue
		}
		to := uint(math.MaxUint32)
		if fd >= 0 {
			to = uint(fd) - 1
		}
		if from <= to {
			err := unix.CloseRange(from, to, unix.CLOSE_RANGE_CLOEXEC)
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
				// Before Linux 5.11.
				err = cloexecEach(from, to)
			}
			if err != nil {
				return fmt.Errorf("marking inherited descriptors %d-%d close-on-exec: %w", from, to, err)
			}
		}
		if fd < 0 {
			break
		}
		from = uint(fd) + 1
	}
	return nil
}

// cloexecEach marks the open descriptors from..to close-on-exec, one by one.
func cloexecEach(from, to uint) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || uint(fd) < from || uint(fd) > to {
			continue
		}
		// The directory's own descriptor is closed by now: EBADF.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return err
		}
	}
	return nil
}

// start starts QEMU with its QMP socket, inside r.startCPUs().
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
	// unsupervised. QEMU gets a process group of its own, so that the
	// terminal's Ctrl-C and hang-up reach the launcher alone, which
	// shuts the guest down in stages, rather than kill QEMU at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	// A QEMU whose console or monitor is the terminal (the seed's
	// -nographic) must read it: its group becomes the foreground job,
	// set in the child before exec so no early read fails. Keys, Ctrl-C
	// too, then go to the guest (QEMU makes the terminal raw).
	tty := r.consoleTerminal()
	var rl *relay
	if r.User != nil {
		// Not in the launcher's session, where it could inject keys into
		// root's terminal: a session of its own, and a pty of the
		// launcher's for the terminal (console.go).
		cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Setsid = false, true
		if rl, err = newRelay(cmd, tty); err != nil {
			conn.Close()
			return err
		}
		tty = nil
		if err := r.asUser(cmd); err != nil {
			if rl != nil {
				rl.abandon()
			}
			conn.Close()
			return err
		}
	} else if tty != nil {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = int(tty.Fd())
	}
	if err := startWithin(cmd, r.startCPUs()); err != nil {
		if rl != nil {
			rl.abandon()
		}
		r.closeTaps()
		conn.Close()
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	r.cmd = cmd
	r.logf("started QEMU, pid %d", cmd.Process.Pid)
	if rl != nil {
		if err := rl.start(); err != nil {
			fmt.Fprintf(r.cfg.Stderr, "qemu-launch: warning: %v\n", err)
		}
	}
	go func() {
		cmd.Wait() // its error says no more than cmd.ProcessState
		if rl != nil {
			rl.finish()
		}
		if tty != nil {
			takeTerminal(tty)
		}
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

// consoleTerminal returns the terminal QEMU should read as the foreground
// job, or nil: QEMU reads its standard input, that is a terminal, and the
// launcher is its foreground job (a launcher started with & must not take
// the terminal from the shell).
func (r *run) consoleTerminal() *os.File {
	f, ok := r.cfg.Stdin.(*os.File)
	if !ok || !r.ReadsTerminal || !isTerminal(f) {
		return nil
	}
	if fg, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP); err != nil || fg != unix.Getpgrp() {
		return nil
	}
	return f
}

// takeTerminal makes the launcher's process group the terminal's
// foreground job again once QEMU has exited, as a shell does for its jobs;
// SIGTTOU, which this would raise in the background, is ignored (see Run).
func takeTerminal(tty *os.File) {
	unix.IoctlSetPointerInt(int(tty.Fd()), unix.TIOCSPGRP, unix.Getpgrp())
}
