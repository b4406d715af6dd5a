package launch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// openPTY returns a new pseudo-terminal's master and slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// A ptyShell is a shell leading a session whose terminal is a pty, as a
// login shell does, running a script around qemu-launch; the test reads
// what the terminal shows and who holds it.
type ptyShell struct {
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
}

// startPTYShell runs script with sh -c, "$@" being qemu-launch -v and a
// QEMU whose serial console and monitor are the terminal (-nographic).
func startPTYShell(t *testing.T, script string) *ptyShell {
	t.Helper()
	master, slave := openPTY(t)
	dir := t.TempDir()
	p := &ptyShell{master: master}
	p.cmd = exec.Command("/bin/sh", "-c", script, "sh",
		filepath.Join(nstest.Binaries(t), "qemu-launch"), "-v", "--shutdown-timeout", "1s",
		qemu, "-accel", "tcg", "-nographic", "-nodefaults", "-serial", "mon:stdio", "-m", "64")
	p.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(dir, "run")}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-done })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *ptyShell) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// waitOutput waits until the terminal has shown want.
func (p *ptyShell) waitOutput(t *testing.T, want string) {
	t.Helper()
	for end := time.Now().Add(hangGuard); !strings.Contains(p.output(), want); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the terminal never showed %q\noutput:\n%s", want, p.output())
		}
	}
}

// foreground is the terminal's foreground process group.
func (p *ptyShell) foreground(t *testing.T) int {
	t.Helper()
	fg, err := unix.IoctlGetInt(int(p.master.Fd()), unix.TIOCGPGRP)
	if err != nil {
		t.Fatal(err)
	}
	return fg
}

// The seed's -nographic puts the guest's serial console and QEMU's
// monitor on the terminal: QEMU must be the terminal's foreground job to
// read it, and the launcher takes the terminal back when QEMU exits. The
// keys prove it: Ctrl-A X, typed on the terminal, quits QEMU.
func TestConsoleOnTerminal(t *testing.T) {
	requireQEMU(t)
	// A shell without job control runs the launcher in its own process
	// group, as a login shell's script would, and outlives it, so that
	// the terminal can be read after the launcher is gone.
	p := startPTYShell(t, `"$@"; echo "launcher exited $?"; exec sleep 120`)
	shell := p.cmd.Process.Pid

	// Wait until QEMU has started and its group holds the terminal.
	var qemuPid int
	for end := time.Now().Add(hangGuard); qemuPid == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("QEMU never became the terminal's foreground job\noutput:\n%s", p.output())
		}
		if fg := p.foreground(t); fg != shell && fg > 0 {
			qemuPid = fg // QEMU leads the group it was started in
		}
	}
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(qemuPid) + "/comm"); !bytes.HasPrefix(comm, []byte("qemu-system")) {
		t.Fatalf("the terminal's foreground group %d is not QEMU's (%q)", qemuPid, comm)
	}
	// Ctrl-A X: QEMU's own key to quit, read from the terminal.
	if _, err := p.master.Write([]byte{0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "launcher exited")
	if !strings.Contains(p.output(), "launcher exited 0") {
		t.Errorf("qemu-launch did not exit with QEMU's 0\noutput:\n%s", p.output())
	}
	if fg := p.foreground(t); fg != shell {
		t.Errorf("after QEMU exited the terminal's foreground group is %d, want the launcher's %d (the shell's)", fg, shell)
	}
}

// A launcher started in the background (&, with job control) must not
// take the terminal from the shell for its QEMU: the shell stays the
// foreground job while QEMU runs, and a SIGTERM shuts the guest down.
func TestConsoleInBackgroundJob(t *testing.T) {
	requireQEMU(t)
	p := startPTYShell(t, `set -m; "$@" & echo "job $!"; wait $!; echo "launcher exited $?"; exec sleep 120`)
	shell := p.cmd.Process.Pid
	p.waitOutput(t, "started QEMU, pid")
	if fg := p.foreground(t); fg != shell {
		t.Errorf("with QEMU started the terminal's foreground group is %d, want the shell's %d\noutput:\n%s", fg, shell, p.output())
	}
	var job int
	for _, line := range strings.Split(p.output(), "\n") {
		if f, ok := strings.CutPrefix(strings.TrimSpace(line), "job "); ok {
			job, _ = strconv.Atoi(f)
		}
	}
	if job == 0 {
		t.Fatalf("no job pid in the output:\n%s", p.output())
	}
	if err := syscall.Kill(job, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "launcher exited")
	if fg := p.foreground(t); fg != shell {
		t.Errorf("after the launcher exited the terminal's foreground group is %d, want the shell's %d", fg, shell)
	}
}
