package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

const journalSocket = "/run/systemd/journal/socket"

// TestJournal listens where journald would and checks the entries the
// helpers send: SYSLOG_IDENTIFIER and fields naming the tap and bridge.
func TestJournal(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(journalSocket); err == nil {
		t.Skip("journald runs on this machine; its socket cannot be borrowed for the test")
	}
	const dir = "/run/systemd/journal"
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: journalSocket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		os.Remove(journalSocket)
	})
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "jrnl0")
	r := e.run("qemu-ifup", "--quiet", "jrnl0")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("qemu-ifup --quiet: %v", r)
	}
	r = e.run("qemu-ifup", "jrnl9")
	if r.code != 1 || r.stderr != "qemu-ifup: jrnl9: no such interface\n" {
		t.Fatalf("qemu-ifup jrnl9: %v", r)
	}

	var entries []map[string]string
	buf := make([]byte, 64<<10)
	for {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		fields := map[string]string{}
		for _, l := range strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				fields[k] = v
			}
		}
		// Other test packages may run helpers meanwhile: keep ours.
		if strings.HasPrefix(fields["QEMU_TAP"], "jrnl") {
			entries = append(entries, fields)
		}
	}
	// mac, attach, promisc, up (the MTU already matches), then the error.
	if len(entries) != 4+1 {
		t.Fatalf("got %d journal entries, want 4 changes and 1 error: %v", len(entries), entries)
	}
	attach := entries[1]
	if attach["MESSAGE"] != "qemu-ifup: jrnl0: attach to virbr0 (bridge from default)" ||
		attach["SYSLOG_IDENTIFIER"] != "qemu-ifup" || attach["QEMU_TAP"] != "jrnl0" ||
		attach["QEMU_BRIDGE"] != "virbr0" || attach["PRIORITY"] != "6" {
		t.Errorf("attach entry = %v", attach)
	}
	if last := entries[4]; last["MESSAGE"] != "qemu-ifup: jrnl9: no such interface" || last["PRIORITY"] != "3" ||
		last["QEMU_TAP"] != "jrnl9" {
		t.Errorf("error entry = %v", last)
	}
}

// TestSecureRefusalReachesJournal runs the helpers with a capability, as
// a user, with JOURNAL_STREAM naming their own stderr: under AT_SECURE the
// environment is the caller's and must change nothing, so a refusal goes
// both to the journal, where the administrator reads it, and to stderr.
// The journal is a socket the test listens on, in a mount namespace of
// the helper's own (so journald's socket, and other tests', stay apart).
func TestSecureRefusalReachesJournal(t *testing.T) {
	nstest.RequireRoot(t)
	acl, progs := capBinaries(t, "allow br1\n", "qemu-bridge-helper", "qemu-ifup")
	user := nstest.Nobody(t)
	for _, tt := range []struct {
		name, prog string
		args       []string
		tap        string // the tap to create, 4242's
		want       string // the refusal, after "PROG: "
	}{
		{"bridge not allowed", "qemu-bridge-helper", []string{"--fd=3", "--br=virbr0"}, "tap0",
			`bridge virbr0 not allowed by ` + acl + ` (add the line "allow virbr0" to allow it)`},
		{"bad bridge name", "qemu-bridge-helper", []string{"--fd=3", "--br=virbr0virbr0virb"}, "tap0",
			`--br: invalid interface name "virbr0virbr0virb": 16 bytes, longer than 15`},
		{"another user's tap", "qemu-ifup", []string{"tap0"}, "tap0",
			"tap0: not the caller's tap (owner uid 4242; caller uid 65534): run with a capability, qemu-ifup and qemu-ifdown touch only taps whose owner or group is the caller's"},
		{"a tap named like an option", "qemu-ifup", []string{"--help"}, "--help",
			`invalid interface name "--help": starts with '-' (reads as an option)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prog := progs[tt.prog]
			ns := nstest.New(t)
			ns.AddBridge(t, "virbr0", 0)
			if err := ns.Do(func() error { return addOwnedTap(tt.tap, 4242, noOwner) }); err != nil {
				t.Fatal(err)
			}
			stderr, err := os.CreateTemp(t.TempDir(), "stderr")
			if err != nil {
				t.Fatal(err)
			}
			defer stderr.Close()
			var st unix.Stat_t
			if err := unix.Fstat(int(stderr.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours, theirs := os.NewFile(uintptr(sp[0]), "ours"), os.NewFile(uintptr(sp[1]), "theirs")
			defer ours.Close()
			defer theirs.Close()
			cmd := exec.Command(prog, tt.args...)
			cmd.Env = []string{fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)}
			cmd.Stderr = stderr
			cmd.ExtraFiles = []*os.File{theirs}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user}
			var jfd int
			err = ns.Do(func() error {
				var err error
				jfd, err = fakeJournal()
				if err != nil {
					return err
				}
				return cmd.Start()
			})
			if jfd > 0 {
				defer unix.Close(jfd)
			}
			if err != nil {
				t.Fatal(err)
			}
			code, err := nstest.ExitStatus(cmd.Wait())
			if err != nil || code != 1 {
				t.Fatalf("exit %d, %v; want 1", code, err)
			}
			line := tt.prog + ": " + tt.want
			if got, _ := os.ReadFile(stderr.Name()); !strings.Contains(string(got), line) {
				t.Errorf("stderr %q lacks %q", got, line)
			}
			var msgs []string
			buf := make([]byte, 64<<10)
			for {
				n, _, err := unix.Recvfrom(jfd, buf, unix.MSG_DONTWAIT)
				if err != nil {
					break
				}
				for _, l := range strings.Split(string(buf[:n]), "\n") {
					if m, ok := strings.CutPrefix(l, "MESSAGE="); ok {
						msgs = append(msgs, m)
					}
				}
			}
			found := false
			for _, m := range msgs {
				found = found || strings.HasPrefix(m, line)
			}
			if !found {
				t.Errorf("journal got %q, not the refusal %q", msgs, line)
			}
		})
	}
}

// fakeJournal, on a thread of its own, gives that thread (and the
// processes it starts) a mount namespace with a tmpfs on /run, and listens
// there on journald's socket.
func fakeJournal() (int, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return -1, fmt.Errorf("unshare the mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return -1, fmt.Errorf("make / private: %w", err)
	}
	// A tmpfs over /run/systemd only: the helpers under test live in a
	// trusted directory elsewhere under /run.
	systemd := filepath.Dir(filepath.Dir(journalSocket))
	if err := os.MkdirAll(systemd, 0o755); err != nil {
		return -1, err
	}
	if err := unix.Mount("tmpfs", systemd, "tmpfs", 0, "mode=755"); err != nil {
		return -1, fmt.Errorf("mount a tmpfs on %s: %w", systemd, err)
	}
	if err := os.MkdirAll(filepath.Dir(journalSocket), 0o755); err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: journalSocket}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := os.Chmod(journalSocket, 0o666); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
