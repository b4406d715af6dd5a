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
	slave  *os.File // the test's copy, to name the terminal
	mu     sync.Mutex
	out    bytes.Buffer
}

// consoleArgs are qemu-launch's arguments for a QEMU whose serial console
// and monitor are the terminal (-nographic), after the launcher's opts.
func consoleArgs(opts ...string) []string {
	return append(append([]string{"-v", "--shutdown-timeout", "1s"}, opts...),
		qemu, "-accel", "tcg", "-nographic", "-nodefaults", "-serial", "mon:stdio", "-m", "64")
}

// startPTYShell runs script with sh -c, "$@" being qemu-launch args.
func startPTYShell(t *testing.T, script string, args ...string) *ptyShell {
	t.Helper()
	master, slave := openPTY(t)
	dir := t.TempDir()
	p := &ptyShell{master: master, slave: slave}
	p.cmd = exec.Command("/bin/sh", append([]string{"-c", script, "sh", filepath.Join(nstest.Binaries(t), "qemu-launch")}, args...)...)
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
	p := startPTYShell(t, `"$@"; echo "launcher exited $?"; exec sleep 120`, consoleArgs()...)
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
	// The group is QEMU's from before its exec (the launcher's child
	// takes the terminal, then runs QEMU): wait for the exec.
	for end := time.Now().Add(hangGuard); ; time.Sleep(50 * time.Millisecond) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(qemuPid) + "/comm")
		if bytes.HasPrefix(comm, []byte("qemu-system")) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the terminal's foreground group %d is not QEMU's (%q)", qemuPid, comm)
		}
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
// take the terminal from the shell for its QEMU, nor, for a QEMU run as a
// user, make it raw to relay it: the shell stays the foreground job while
// QEMU runs, and a SIGTERM shuts the guest down.
func TestConsoleInBackgroundJob(t *testing.T) {
	requireQEMU(t)
	for _, tt := range []struct {
		name string
		opts []string
	}{{"root", nil}, {"user", []string{"--user", "nobody"}}} {
		t.Run(tt.name, func(t *testing.T) {
			p := startPTYShell(t, `set -m; "$@" & echo "job $!"; wait $!; echo "launcher exited $?"; exec sleep 120`,
				consoleArgs(tt.opts...)...)
			shell := p.cmd.Process.Pid
			p.waitOutput(t, "started QEMU, pid")
			if fg := p.foreground(t); fg != shell {
				t.Errorf("with QEMU started the terminal's foreground group is %d, want the shell's %d\noutput:\n%s", fg, shell, p.output())
			}
			// A root QEMU makes the terminal raw itself.
			if tt.name == "user" && !p.cooked(t) {
				t.Errorf("with QEMU started the terminal is raw, for a launcher in the background\noutput:\n%s", p.output())
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
		})
	}
}

// cooked reports whether the terminal edits lines, echoes and makes
// signals of keys, as a shell leaves it.
func (p *ptyShell) cooked(t *testing.T) bool {
	t.Helper()
	// On the master, TCGETS reads the terminal's (the slave's) mode.
	tio, err := unix.IoctlGetTermios(int(p.master.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == unix.ICANON|unix.ECHO|unix.ISIG
}

// qemuPid is the pid of QEMU, from the launcher's -v output.
func (p *ptyShell) qemuPid(t *testing.T) int {
	t.Helper()
	p.waitOutput(t, "started QEMU, pid ")
	_, after, _ := strings.Cut(p.output(), "started QEMU, pid ")
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(after, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("no QEMU pid in the output:\n%s", p.output())
	}
	return pid
}

// procStat returns the session and the controlling terminal (tty_nr) of
// a process, from /proc/PID/stat.
func procStat(t *testing.T, stat string) (session, ttyNr int) {
	t.Helper()
	// pid (comm) state ppid pgrp session tty_nr ...
	i := strings.LastIndexByte(stat, ')')
	f := strings.Fields(stat[i+1:])
	if i < 0 || len(f) < 5 {
		t.Fatalf("/proc/PID/stat: %q", stat)
	}
	session, err1 := strconv.Atoi(f[3])
	ttyNr, err2 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/PID/stat: %q", stat)
	}
	return session, ttyNr
}

// ttyNr is the terminal f as /proc/PID/stat's tty_nr names it.
func ttyNr(t *testing.T, f *os.File) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
	return int(minor&0xff | major<<8 | (minor&^0xff)<<12)
}

// A QEMU run as a user, by a launcher on root's terminal, is in a session
// of its own, not on root's terminal: what runs as that user (here a
// stand-in QEMU; in earnest a guest escape) cannot inject keys into root's
// terminal with TIOCSTI, which root's shell would read once the launcher
// exits. Its console is a pty of the launcher's.
func TestUserQEMUHasNoRootTerminal(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireTool(t, "perl", "perl-base")
	stand := standIn(t, `echo "stand-in stat $(cat /proc/$$/stat)"
perl -e 'for (split //, "injected\n") { my $c = $_; ioctl(STDIN, 0x5412, $c) or die "stand-in TIOCSTI: $!\n" }' && echo "stand-in injected"
`)
	p := startPTYShell(t, `"$@"; echo "launcher exited $?"; read -r line; echo "shell read [$line]"; exec sleep 120`,
		"-v", "--user", "nobody", stand, "-nographic")
	shell := p.cmd.Process.Pid
	p.waitOutput(t, "launcher exited")
	_, stat, ok := strings.Cut(p.output(), "stand-in stat ")
	if !ok {
		t.Fatalf("the stand-in QEMU said nothing\noutput:\n%s", p.output())
	}
	session, tty := procStat(t, strings.SplitN(stat, "\n", 2)[0])
	if session == shell {
		t.Errorf("QEMU is in root's session %d", session)
	}
	if root := ttyNr(t, p.slave); tty == root {
		t.Errorf("QEMU's controlling terminal is root's (tty_nr %d)", tty)
	}
	// What root types next must be what root's shell reads.
	if _, err := p.master.Write([]byte("clean\n")); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "shell read [")
	if out := p.output(); !strings.Contains(out, "shell read [clean]") {
		t.Errorf("root's shell did not read what root typed next\noutput:\n%s", out)
	}
	if !p.cooked(t) {
		t.Error("the launcher left the terminal raw")
	}
}

// The console of a QEMU run as a user, relayed through the launcher's
// pty, works as on the terminal: QEMU reads it, and Ctrl-A X typed on the
// terminal quits QEMU; the launcher, still the terminal's foreground job,
// makes the terminal raw meanwhile and restores it after.
func TestUserConsoleOnTerminal(t *testing.T) {
	requireQEMU(t)
	p := startPTYShell(t, `"$@"; echo "launcher exited $?"; exec sleep 120`, consoleArgs("--user", "nobody")...)
	pid := p.qemuPid(t)
	// QEMU makes its console raw once it reads it: then it is ready.
	con, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/fd/0", os.O_RDONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	for end := time.Now().Add(hangGuard); ; time.Sleep(50 * time.Millisecond) {
		tio, err := unix.IoctlGetTermios(int(con.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatalf("QEMU's standard input is no terminal: %v", err)
		}
		if tio.Lflag&unix.ICANON == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("QEMU never made its console raw\noutput:\n%s", p.output())
		}
	}
	if ttyNr(t, con) == ttyNr(t, p.slave) {
		t.Fatal("QEMU's console is root's terminal, not a pty of the launcher's")
	}
	if fg := p.foreground(t); fg == pid {
		t.Errorf("QEMU's group %d holds root's terminal", fg)
	}
	if p.cooked(t) {
		t.Error("the terminal is not raw while the launcher relays it")
	}
	con.Close()
	// Ctrl-A X: QEMU's own key to quit, through the relay.
	if _, err := p.master.Write([]byte{0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "launcher exited")
	if !strings.Contains(p.output(), "launcher exited 0") {
		t.Errorf("qemu-launch did not exit with QEMU's 0\noutput:\n%s", p.output())
	}
	if !p.cooked(t) {
		t.Error("the launcher left the terminal raw")
	}
}
