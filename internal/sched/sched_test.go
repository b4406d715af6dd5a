package sched

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

func TestParseStat(t *testing.T) {
	// A thread named "a) b (c" with rt_priority 80 under SCHED_FIFO
	// (fields 40 and 41), other fields zero.
	line := "4242 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 80 1 0 0 0\n"
	prio, policy, err := parseStat([]byte(line))
	if err != nil || prio != 80 || policy != FIFO {
		t.Errorf("parseStat = %d, %d, %v; want 80, 1", prio, policy, err)
	}
	if got := commName([]byte(line)); got != "a) b (c" {
		t.Errorf("commName = %q, want %q", got, "a) b (c")
	}
	if _, _, err := parseStat([]byte("1 (x) S 1 2")); err == nil {
		t.Error("parseStat accepted a short line")
	}
}

func TestReadSelf(t *testing.T) {
	th, err := Read(os.Getpid(), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if th.Policy != Other || th.Prio != 0 || th.CPUs.Empty() {
		t.Errorf("Read(self) = %v", th)
	}
}

// A thread of this test process goes to SCHED_FIFO 80 on CPU 0 and back,
// and reading it back from /proc shows each state.
func TestSetAndReadBack(t *testing.T) {
	nstest.RequireRoot(t)
	done := make(chan Thread, 2)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread exits with the goroutine
		tid := unix.Gettid()
		err := SetAffinity(tid, cpuset.Of(0))
		if err == nil {
			err = SetPriority(tid, 80)
		}
		if err == nil {
			var th Thread
			th, err = Read(os.Getpid(), tid)
			done <- th
		}
		if err == nil {
			err = SetPriority(tid, 0)
		}
		if err == nil {
			var th Thread
			th, err = Read(os.Getpid(), tid)
			done <- th
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if th := <-done; !th.CPUs.Equal(cpuset.Of(0)) || th.Policy != FIFO || th.Prio != 80 {
		t.Errorf("after SetPriority(80): %v", th)
	}
	if th := <-done; th.Policy != Other || th.Prio != 0 {
		t.Errorf("after SetPriority(0): %v", th)
	}
}

func TestErrorsNameTheThread(t *testing.T) {
	// No thread has an id above pid_max's ceiling (4194304).
	err := SetAffinity(1<<23, cpuset.Of(0))
	if err == nil || !strings.Contains(err.Error(), "thread 8388608") {
		t.Errorf("SetAffinity on a missing thread: %v", err)
	}
}
