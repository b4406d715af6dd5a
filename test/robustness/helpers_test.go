// Package robustness runs the built helpers against faults, races and bad
// input, each test in its own network namespace, and checks that every run
// ends with a clean exit status, a one-line message and no half-changed
// interface.
package robustness

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// A result is one finished run of a helper.
type result struct {
	code   int
	stderr string
}

// env is what a run sees: no config (unless the test writes one), a run
// dir of its own and no bridge from the environment.
func env(t testing.TB, extra ...string) []string {
	return append([]string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"QEMU_IFUP_CONFIG=" + filepath.Join(t.TempDir(), "none.conf"),
		"QEMU_TAP_HELPERS_RUNDIR=" + t.TempDir(),
	}, extra...)
}

// run runs a helper from nstest.Binaries inside ns.
func run(t testing.TB, ns *nstest.NS, env []string, prog string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), prog), args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	code, err := nstest.ExitStatus(ns.Run(cmd))
	if err != nil {
		t.Fatalf("%s %q: %v", prog, args, err)
	}
	return result{code, stderr.String()}
}

// checkFailure checks that r is exit 1 with one line on stderr, prefixed
// by the program's name and containing want.
func checkFailure(t testing.TB, prog string, r result, want string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("%s: exit %d, want 1 (stderr %q)", prog, r.code, r.stderr)
	}
	checkOneLine(t, prog, r.stderr, want)
}

func checkOneLine(t testing.TB, prog, stderr, want string) {
	t.Helper()
	line := strings.TrimSuffix(stderr, "\n")
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, prog+": ") || !strings.Contains(line, want) {
		t.Errorf("%s: stderr %q, want one line %q... containing %q", prog, stderr, prog+": ", want)
	}
}

// checkUnchanged checks that every named interface is as snapped.
func checkUnchanged(t testing.TB, ns *nstest.NS, before map[string]nstest.Port) {
	t.Helper()
	for name, b := range before {
		if a := ns.Snapshot(t, name); a != b {
			t.Errorf("%s changed: before %+v, after %+v", name, b, a)
		}
	}
}

func snapAll(t testing.TB, ns *nstest.NS, names ...string) map[string]nstest.Port {
	t.Helper()
	m := map[string]nstest.Port{}
	for _, n := range names {
		m[n] = ns.Snapshot(t, n)
	}
	return m
}
