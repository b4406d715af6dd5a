package ifscript

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A holder whose queue is full, never accepting, cannot be asked who it
// is: it costs the wait, then a warning, never a hang.
func TestLockAbstractFullQueue(t *testing.T) {
	ifname := "qth" + strconv.Itoa(unix.Getpid()%100000)
	addr := &unix.SockaddrUnix{Name: "@qemu-tap-helpers/" + ifname}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fds = append(fds, l)
	if err := unix.Bind(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 0); err != nil {
		t.Fatal(err)
	}
	for full := false; !full; {
		c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, c)
		err = unix.Connect(c, addr)
		full = errors.Is(err, unix.EAGAIN)
		if !full && (err != nil || len(fds) > 16) {
			t.Fatalf("filling the queue: %v after %d connections", err, len(fds)-1)
		}
	}
	type result struct {
		squat string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		release, squat, err := lockAbstractFor(ifname, 50*time.Millisecond)
		if err == nil {
			release()
		}
		done <- result{squat, err}
	}()
	select {
	case r := <-done:
		if r.err != nil || !strings.Contains(r.squat, "held by a socket whose queue stayed full") {
			t.Errorf("lockAbstractFor = %q, %v; want a warning about the full queue", r.squat, r.err)
		}
	case <-time.After(time.Minute):
		t.Fatal("lockAbstractFor hangs on a holder whose queue is full")
	}
}

// A holder that is the caller's own helper is waited for, and past the
// wait is "busy", not passed.
func TestLockAbstractOwnHolder(t *testing.T) {
	ifname := "qto" + strconv.Itoa(unix.Getpid()%100000)
	release, squat, err := lockAbstractFor(ifname, 0)
	if err != nil || squat != "" {
		t.Fatalf("first lock: %q, %v", squat, err)
	}
	defer release()
	_, squat, err = lockAbstractFor(ifname, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "busy") || squat != "" {
		t.Errorf("second lock = %q, %v; want busy", squat, err)
	}
}
