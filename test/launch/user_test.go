package launch

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// standIn writes a shell script that qemu-launch runs in QEMU's place (it
// answers no QMP, so the launcher sees QEMU exit during start-up, which is
// all these tests need), where every user may run it.
func standIn(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(nstest.PublicDir(t), "qemu-stand-in")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// runLauncher runs qemu-launch to its end with env as its whole
// environment (and its own run directory), extra as its descriptors from
// 3 up (nil entries closed), and returns what it wrote on stdout, which
// is its QEMU's stdout.
func runLauncher(t *testing.T, env []string, extra []*os.File, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), args...)
	cmd.Env = append([]string{"QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(t.TempDir(), "run")}, env...)
	cmd.ExtraFiles = extra
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangGuard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("qemu-launch still runs after %s\nstderr:\n%s", hangGuard, stderr.String())
	}
	if !strings.Contains(stderr.String(), "started QEMU, pid") {
		t.Fatalf("qemu-launch did not start its QEMU (%v)\nstderr:\n%s", cmd.ProcessState, stderr.String())
	}
	return stdout.String()
}

// fdsOfStandIn runs qemu-launch -v OPTS with a stand-in QEMU (given
// qemuArgs) that lists its open descriptors, the launcher having inherited
// a root-only file without close-on-exec as descriptor 7, and another
// file as descriptor 20. It fails the test if QEMU holds the root-only
// file, and returns QEMU's descriptors below 10 (the shell keeps its own
// from 10 up) and whether it holds the other file as 20.
func fdsOfStandIn(t *testing.T, opts []string, qemuArgs ...string) (low []int, has20 bool) {
	t.Helper()
	dir := t.TempDir()
	var extra []*os.File // fds 3-20
	for _, name := range []string{"secret", "granted"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		extra = append(extra, f)
	}
	secret, granted := extra[0], extra[1]
	extra = make([]*os.File, 18)
	extra[7-3], extra[20-3] = secret, granted
	// ls lists the shell's descriptors, its own being in another process.
	qemu := standIn(t, "ls -l /proc/$$/fd/\n")
	args := append(append(append([]string{"-v"}, opts...), qemu, "-display", "none"), qemuArgs...)
	out := runLauncher(t, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, extra, args...)
	for _, line := range strings.Split(out, "\n") {
		// lrwx------ 1 nobody nogroup 64 Dec  7 04:55 0 -> /dev/null
		before, target, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		f := strings.Fields(before)
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Fatalf("stand-in QEMU's listing: %q", line)
		}
		switch {
		case target == secret.Name():
			t.Errorf("QEMU holds the launcher's inherited %s as fd %d", target, n)
		case n == 20 && target == granted.Name():
			has20 = true
		}
		if n < 10 {
			low = append(low, n)
		}
	}
	slices.Sort(low)
	return low, has20
}

// A QEMU run as a user gets its standard streams and the QMP socket (and
// the taps, none here) and nothing else the launcher holds: descriptors
// the launcher inherited without close-on-exec, a root-only file among
// them, do not reach it.
func TestUserQEMUGetsNoStrayFds(t *testing.T) {
	nstest.RequireRoot(t)
	low, has20 := fdsOfStandIn(t, []string{"--user", "nobody"})
	if want := []int{0, 1, 2, 3}; !slices.Equal(low, want) {
		t.Errorf("QEMU's descriptors below 10: %v, want %v (stdin, stdout, stderr, QMP)", low, want)
	}
	if has20 {
		t.Error("QEMU holds the launcher's inherited fd 20")
	}
}

// A QEMU run as root gets no stray descriptor either, but one its command
// line names (-add-fd fd=20) is the caller's to give, and it gets that.
func TestRootQEMUGetsNoStrayFds(t *testing.T) {
	nstest.RequireRoot(t)
	low, has20 := fdsOfStandIn(t, nil, "-add-fd", "fd=20,set=1")
	if want := []int{0, 1, 2, 3}; !slices.Equal(low, want) {
		t.Errorf("QEMU's descriptors below 10: %v, want %v (stdin, stdout, stderr, QMP)", low, want)
	}
	if !has20 {
		t.Error("QEMU lacks fd 20, which its command line names (-add-fd fd=20)")
	}
}

// A QEMU run as a user gets a fixed environment: PATH, the user's HOME,
// USER and LOGNAME, the terminal's type and the locale, and the display's
// variables only when it opens a window; none of root's (a token here).
func TestUserQEMUEnvironment(t *testing.T) {
	nstest.RequireRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/root/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root", "LOGNAME=root",
		"SECRET_TOKEN=hunter2", "LD_LIBRARY_PATH=/root/lib", "TERM=xterm-256color", "LANG=C.UTF-8", "LC_TIME=C",
		"DISPLAY=:7", "XAUTHORITY=/root/.Xauthority", "WAYLAND_DISPLAY=wayland-0", "XDG_RUNTIME_DIR=/run/user/0"}
	base := []string{"HOME=" + nobody.HomeDir, "LANG=C.UTF-8", "LC_TIME=C", "LOGNAME=nobody",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm-256color", "USER=nobody"}
	display := []string{"DISPLAY=:7", "WAYLAND_DISPLAY=wayland-0", "XAUTHORITY=/root/.Xauthority", "XDG_RUNTIME_DIR=/run/user/0"}
	qemu := standIn(t, `tr '\0' '\n' </proc/$$/environ | sed 's/^/env /'`+"\n")
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"no window", []string{"-display", "none"}, base},
		{"console", []string{"-nographic"}, base},
		{"gtk", []string{"-display", "gtk"}, append(base, display...)},
		{"default display", []string{"-m", "64"}, append(base, display...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := runLauncher(t, env, nil, append([]string{"-v", "--user", "nobody", qemu}, tt.args...)...)
			var got []string
			for _, line := range strings.Split(out, "\n") {
				if kv, ok := strings.CutPrefix(line, "env "); ok {
					got = append(got, kv)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("QEMU's environment:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
