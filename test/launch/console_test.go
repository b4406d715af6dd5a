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

// The seed's -nographic puts the guest's serial console and QEMU's
// monitor on the terminal: QEMU must be the terminal's foreground job to
// read it, and the launcher takes the terminal back when QEMU exits. The
// keys prove it: Ctrl-A X, typed on the terminal, quits QEMU.
func TestConsoleOnTerminal(t *testing.T) {
	requireQEMU(t)
	master, slave := openPTY(t)
	dir := t.TempDir()
	// A shell without job control runs the launcher in its own process
	// group, as a login shell's script would, and outlives it, so that
	// the terminal can be read after the launcher is gone.
	cmd := exec.Command("/bin/sh", "-c", `"$@"; echo "launcher exited $?"; exec sleep 120`, "sh",
		filepath.Join(nstest.Binaries(t), "qemu-launch"), "-v",
		qemu, "-accel", "tcg", "-nographic", "-nodefaults", "-serial", "mon:stdio", "-m", "64")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(dir, "run")}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// As a login shell's job: a session with the pty as its terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }

	// Wait until QEMU has started and its group holds the terminal.
	var qemuPid int
	for end := time.Now().Add(hangGuard); qemuPid == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("QEMU never became the terminal's foreground job\noutput:\n%s", output())
		}
		fg, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPGRP)
		if err == nil && fg != cmd.Process.Pid && fg > 0 {
			qemuPid = fg // QEMU leads the group it was started in
		}
	}
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(qemuPid) + "/comm"); !bytes.HasPrefix(comm, []byte("qemu-system")) {
		t.Fatalf("the terminal's foreground group %d is not QEMU's (%q)", qemuPid, comm)
	}
	// Ctrl-A X: QEMU's own key to quit, read from the terminal.
	if _, err := master.Write([]byte{0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(hangGuard); !strings.Contains(output(), "launcher exited"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("QEMU did not read Ctrl-A X from the terminal\noutput:\n%s", output())
		}
	}
	if !strings.Contains(output(), "launcher exited 0") {
		t.Errorf("qemu-launch did not exit with QEMU's 0\noutput:\n%s", output())
	}
	fg, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPGRP)
	if err != nil {
		t.Fatal(err)
	}
	if fg != cmd.Process.Pid {
		t.Errorf("after QEMU exited the terminal's foreground group is %d, want the launcher's %d (the shell's)", fg, cmd.Process.Pid)
	}
}
