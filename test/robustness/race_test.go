package robustness

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// rounds is how often each race is run: enough for the interleavings to
// vary, few enough for make test.
const rounds = 40

// started is a helper started inside a namespace.
type started struct {
	prog   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func start(t testing.TB, ns *nstest.NS, env []string, prog string, args ...string) *started {
	t.Helper()
	s := &started{prog: prog}
	s.cmd = exec.Command(filepath.Join(nstest.Binaries(t), prog), args...)
	s.cmd.Env = env
	s.cmd.Stderr = &s.stderr
	if err := ns.Start(s.cmd); err != nil {
		t.Fatalf("start %s: %v", prog, err)
	}
	return s
}

// wait checks that the helper exited 0, or 1 with its error as the last
// line; every line of its stderr must name it.
func (s *started) wait(t testing.TB) int {
	t.Helper()
	code, err := nstest.ExitStatus(s.cmd.Wait())
	if err != nil {
		t.Fatalf("%s: %v", s.prog, err)
	}
	out := strings.TrimSuffix(s.stderr.String(), "\n")
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, s.prog+": ") {
			t.Errorf("%s: stray stderr line %q", s.prog, l)
		}
	}
	if code != 0 && (code != 1 || out == "") {
		t.Errorf("%s: exit %d with stderr %q, want 0 or a clean 1", s.prog, code, out)
	}
	return code
}

// state classifies a tap: "port" (as ifup leaves it), "detached" (as
// ifdown leaves it), or a description of a half-configured tap.
func state(t testing.TB, ns *nstest.NS, name string, br nstest.Port) string {
	t.Helper()
	s := ns.Snapshot(t, name)
	switch {
	case !s.Exists:
		return "gone"
	case s.Master == "br0" && s.Up && s.Promisc && s.MTU == br.MTU && strings.HasPrefix(s.MAC, "fe:"):
		return "port"
	case s.Master == "" && !s.Promisc:
		return "detached"
	}
	return fmt.Sprintf("half-configured %+v", s)
}

// endState counts tap0's state in seen once a and b, two helpers run at
// once, are done: a port or detached, never half-configured.
func endState(t testing.TB, ns *nstest.NS, br nstest.Port, seen map[string]int, what string, a, b *started) {
	t.Helper()
	st := state(t, ns, "tap0", br)
	seen[st]++
	if st != "port" && st != "detached" {
		t.Errorf("%s: tap0 %s\n%s: %s%s: %s", what, st, a.prog, &a.stderr, b.prog, &b.stderr)
	}
}

// replaceTap makes a fresh, down tap called name, as a new QEMU would.
func replaceTap(t testing.TB, ns *nstest.NS, name string) {
	t.Helper()
	if l, err := ns.Handle.LinkByName(name); err == nil {
		must(t, ns.Handle.LinkDel(l))
	}
	ns.AddTap(t, name)
}

// qemu-ifup and qemu-ifdown on the same tap at once.
func TestRaceIfupIfdown(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	e := env(t, "QEMU_BRIDGE=br0")
	seen := map[string]int{}
	for range rounds {
		replaceTap(t, ns, "tap0")
		br := ns.Snapshot(t, "br0")
		up := start(t, ns, e, "qemu-ifup", "tap0")
		down := start(t, ns, e, "qemu-ifdown", "tap0")
		up.wait(t)
		down.wait(t)
		endState(t, ns, br, seen, "after ifup and ifdown at once", up, down)
	}
	t.Logf("end states: %v", seen)
}

// Two qemu-ifups on the same tap at once both succeed (or one fails
// cleanly) and leave it a port.
func TestRaceTwoIfups(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	e := env(t, "QEMU_BRIDGE=br0")
	for range rounds {
		replaceTap(t, ns, "tap0")
		br := ns.Snapshot(t, "br0")
		a := start(t, ns, e, "qemu-ifup", "tap0")
		b := start(t, ns, e, "qemu-ifup", "tap0")
		a.wait(t)
		b.wait(t)
		if st := state(t, ns, "tap0", br); st != "port" {
			t.Errorf("after two ifups at once: tap0 %s\n1: %s2: %s", st, &a.stderr, &b.stderr)
		}
	}
}

// A tap name reused right after it was freed: the old VM's qemu-ifdown runs
// while the tap is deleted and a new tap of the same name is made and
// brought up by a new qemu-ifup.
func TestRaceNameReused(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	e := env(t, "QEMU_BRIDGE=br0")
	seen := map[string]int{}
	for range rounds {
		replaceTap(t, ns, "tap0")
		if r := run(t, ns, e, "qemu-ifup", "tap0"); r.code != 0 {
			t.Fatalf("qemu-ifup tap0: exit %d: %s", r.code, r.stderr)
		}
		br := ns.Snapshot(t, "br0")
		var wg sync.WaitGroup
		var down, up *started
		down = start(t, ns, e, "qemu-ifdown", "tap0")
		wg.Add(1)
		go func() {
			defer wg.Done()
			replaceTap(t, ns, "tap0")
			up = start(t, ns, e, "qemu-ifup", "tap0")
		}()
		down.wait(t)
		wg.Wait()
		up.wait(t)
		endState(t, ns, br, seen, "name reused", down, up)
	}
	t.Logf("end states: %v", seen)
}
