package launch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// A QEMU run as a user must not hold the launcher's terminal: in the
// launcher's session it could inject keystrokes into it (TIOCSTI), which
// root's shell would run once the launcher exits. So it runs in a session
// of its own, and where the launcher's standard streams are a terminal it
// gets a pseudo-terminal the launcher owns instead, as sudo's use_pty and
// su --pty do: the launcher copies QEMU's output on it to its own
// terminal, and, when QEMU reads its console and the launcher is the
// terminal's foreground job, every key typed on its terminal (then raw,
// so that Ctrl-C and Ctrl-A X reach QEMU as they would on the terminal)
// to QEMU.

// relayDrain bounds the wait for QEMU's last output once QEMU has exited,
// should a process QEMU started still hold the pty.
const relayDrain = time.Second

// A relay is the pty of a QEMU run as a user and the copying between it
// and the launcher's terminal.
type relay struct {
	master, slave *os.File
	term          *os.File  // the launcher's terminal: its window size goes to the pty
	out           io.Writer // where QEMU's output on the pty goes
	in            *os.File  // the terminal whose keys go to QEMU, or nil

	saved   *unix.Termios // in's mode before the launcher made it raw
	stop    *os.File      // closed to end the input's copy
	inDone  chan struct{}
	outDone chan struct{}
	winch   chan os.Signal
}

// terminalFile returns s as a file when it is a terminal.
func terminalFile(s any) (*os.File, bool) {
	f, ok := s.(*os.File)
	return f, ok && isTerminal(f)
}

// newRelay gives cmd, QEMU run as a user, a pty in place of each of its
// standard streams that is a terminal, as its controlling terminal in the
// new session, and returns the relay, or nil when none is a terminal.
// fg is the terminal QEMU reads as the foreground job (consoleTerminal),
// or nil.
func newRelay(cmd *exec.Cmd, fg *os.File) (*relay, error) {
	in, inTerm := terminalFile(cmd.Stdin)
	out, outTerm := terminalFile(cmd.Stdout)
	errf, errTerm := terminalFile(cmd.Stderr)
	if !inTerm && !outTerm && !errTerm {
		return nil, nil
	}
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	rl := &relay{master: master, slave: slave, out: io.Discard, in: fg}
	ctty := 0
	if errTerm {
		cmd.Stderr, rl.term, rl.out, ctty = slave, errf, errf, 2
	}
	if outTerm {
		cmd.Stdout, rl.term, rl.out, ctty = slave, out, out, 1
	}
	if inTerm {
		cmd.Stdin, rl.term, ctty = slave, in, 0
	}
	// The pty starts as the terminal is (line editing, erase key, size).
	if t, err := unix.IoctlGetTermios(int(rl.term.Fd()), unix.TCGETS); err == nil {
		unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, t)
	}
	rl.resize()
	cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, ctty
	return rl, nil
}

// openPTY opens a new pseudo-terminal. The master is non-blocking, so
// that its reads and writes take deadlines; the slave is blocking, as
// QEMU's standard streams, which share its open file, expect.
func openPTY() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a pty for QEMU: %w", err)
	}
	m := os.NewFile(uintptr(mfd), "/dev/ptmx")
	fail := func(err error) (*os.File, *os.File, error) {
		m.Close()
		return nil, nil, fmt.Errorf("opening a pty for QEMU: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fail(err)
	}
	name := "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	fd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	return m, os.NewFile(uintptr(fd), name), nil
}

// resize gives the pty the terminal's window size.
func (rl *relay) resize() {
	if ws, err := unix.IoctlGetWinsize(int(rl.term.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(rl.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// start starts the copying once QEMU has started (and holds the slave).
// A terminal that cannot be made raw is not relayed to QEMU; the error
// says so, the output is relayed all the same.
func (rl *relay) start() error {
	rl.slave.Close()
	rl.outDone = make(chan struct{})
	go func() {
		io.Copy(rl.out, rl.master) // ends with EIO once QEMU is gone
		close(rl.outDone)
	}()
	rl.winch = make(chan os.Signal, 1)
	signal.Notify(rl.winch, unix.SIGWINCH)
	go func() {
		for range rl.winch {
			rl.resize()
		}
	}()
	if rl.in == nil {
		return nil
	}
	stopR, stopW, err := os.Pipe()
	if err != nil {
		rl.in = nil
		return fmt.Errorf("relaying the terminal to QEMU: %w", err)
	}
	saved, err := makeRaw(rl.in)
	if err != nil {
		stopR.Close()
		stopW.Close()
		rl.in = nil
		return fmt.Errorf("relaying the terminal to QEMU: %w", err)
	}
	rl.saved, rl.stop, rl.inDone = saved, stopW, make(chan struct{})
	go func() {
		defer close(rl.inDone)
		defer stopR.Close()
		copyInput(rl.master, int(rl.in.Fd()), int(stopR.Fd()))
	}()
	return nil
}

// finish ends the copying once QEMU has exited: the keys stop going to
// the pty, QEMU's last output reaches the terminal, and the terminal's
// mode is restored.
func (rl *relay) finish() {
	if rl.in != nil {
		rl.stop.Close()
		rl.master.SetWriteDeadline(time.Now())
		<-rl.inDone
	}
	select {
	case <-rl.outDone:
	case <-time.After(relayDrain):
		rl.master.SetReadDeadline(time.Now())
		<-rl.outDone
	}
	if rl.saved != nil {
		unix.IoctlSetTermios(int(rl.in.Fd()), unix.TCSETS, rl.saved)
	}
	signal.Stop(rl.winch)
	close(rl.winch)
	rl.master.Close()
}

// abandon undoes newRelay when QEMU did not start.
func (rl *relay) abandon() {
	rl.slave.Close()
	rl.master.Close()
}

// copyInput copies what is typed on the terminal in to the pty's master
// until stop becomes readable (closed). It polls rather than blocks in a
// read, so that no key typed after QEMU exited is taken from the shell.
func copyInput(master *os.File, in, stop int) {
	buf := make([]byte, 4096)
	fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if fds[1].Revents != 0 || fds[0].Revents&unix.POLLIN == 0 {
			return
		}
		n, err := unix.Read(in, buf)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		if _, err := master.Write(buf[:n]); err != nil {
			return
		}
	}
}

// makeRaw makes the terminal f pass every key as it comes, with no
// signal, echo or line editing (cfmakeraw), and returns its mode before.
// Output processing stays on: QEMU's pty does its own, and the launcher's
// messages keep their line ends.
func makeRaw(f *os.File) (*unix.Termios, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return old, nil
}
