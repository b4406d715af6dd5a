package sched

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

func sleeper(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestSetOnlyOwnThreads: Set changes a thread of its process, and refuses
// the id of another process's thread, which keeps its affinity.
func TestSetOnlyOwnThreads(t *testing.T) {
	ours, other := sleeper(t), sleeper(t)
	before, err := Read(other, other)
	if err != nil {
		t.Fatal(err)
	}
	one := cpuset.Of(before.CPUs.CPUs()[0])
	p, err := OpenProcess(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tid := range []int{other, 0, -1} {
		err := p.Set(tid, Setting{CPUs: one, Policy: true})
		var fe *ForeignError
		if !errors.As(err, &fe) || fe.TID != tid || fe.Undone {
			t.Errorf("Set(%d) = %v, want a *ForeignError", tid, err)
		}
	}
	if after, err := Read(other, other); err != nil || !after.CPUs.Equal(before.CPUs) || after.Policy != before.Policy {
		t.Errorf("the other process after Set: %v, %v; before: %v", after, err, before)
	}
	if err := p.Set(ours, Setting{CPUs: one, Policy: true}); err != nil {
		t.Fatalf("Set(own thread) = %v", err)
	}
	if th, err := Read(ours, ours); err != nil || !th.CPUs.Equal(one) || th.Policy != Other {
		t.Errorf("own thread after Set: %v, %v; want CPUs %s under SCHED_OTHER", th, err, one)
	}
}

// TestFirstChild: a process with one child shows it, one without shows 0.
func TestFirstChild(t *testing.T) {
	child := sleeper(t)
	if got := FirstChild(os.Getpid()); got != child {
		t.Errorf("FirstChild(self) = %d, want %d", got, child)
	}
	if got := FirstChild(child); got != 0 {
		t.Errorf("FirstChild(sleep) = %d, want 0", got)
	}
}
