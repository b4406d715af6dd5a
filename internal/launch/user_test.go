package launch

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/hostcheck"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
)

// TestDryRunAsUser: with --user the taps become fd= (opened by the
// launcher, which runs qemu-ifup on them) and the dry run says so.
func TestDryRunAsUser(t *testing.T) {
	c, out := testConfig()
	c.Binary, c.IfUp, c.IfDown, c.DryRun, c.User = "/nonexistent/qemu", "/h/qemu-ifup", "/h/qemu-ifdown", true, "nobody"
	// The host as root's launcher sees it (CAP_IPC_LOCK), whoever runs
	// the test: without it the host check adds a memory-lock warning.
	c.hostRoot = nstest.Tree(t, map[string]string{
		hostcheck.StatusPath: "CapEff:\t000001ffffffffff\n",
		hostcheck.LimitsPath: "Max locked memory         8388608              8388608              bytes\n",
	})
	c.Args = []string{"-m", "256", "-overcommit", "mem-lock=on", "-name", "rt", "-device", "e1000,netdev=vm0", "-netdev", "tap,id=vm0"}
	if code, err := Run(context.Background(), c); code != 0 || err != nil {
		t.Fatalf("Run = %d, %v", code, err)
	}
	acct, err := lookupAccount("nobody")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/nonexistent/qemu -m 256 -overcommit mem-lock=on -name rt -device e1000,netdev=vm0,mac=" + qemuargs.GuestMAC("rt", "vm0").String() + " -netdev tap,id=vm0,fd=4 " +
			"-chardev socket,id=qemu-launch-qmp,fd=3 -mon chardev=qemu-launch-qmp,mode=control",
		"start QEMU as user " + acct.String() + ", with no capabilities",
		"raise the memory-lock limit to unlimited for QEMU, which locks its memory",
		"create tap rt-vm0, run /h/qemu-ifup on it, and pass it to QEMU as fd 4 (netdev vm0)",
		"write " + filepath.Join(nstest.OwnRunDir(t, "/run/t"), "rt-vm0.conf") + " for qemu-ifup (netdev vm0): GuestMAC=" + qemuargs.GuestMAC("rt", "vm0").String() + " VMName=rt",
		"on SIGTERM, SIGINT or SIGHUP: QMP system_powerdown, SIGTERM after 1m0s, SIGKILL 10s later",
		"after QEMU exits: run /h/qemu-ifdown rt-vm0 if its record is still there",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
}

func TestLookupAccount(t *testing.T) {
	a, err := lookupAccount("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := lookupAccount(strconv.FormatUint(uint64(a.UID), 10)); err != nil || b.Name != a.Name {
		t.Errorf("lookupAccount by uid %d = %v, %v; want %s", a.UID, b, err, a.Name)
	}
	for _, tt := range []struct{ user, want string }{
		{"root", "user root is root: leave User= out to run QEMU as root"},
		{"0", "user 0 is root: leave User= out to run QEMU as root"},
		{"no-such-user-qth", "user no-such-user-qth: user: unknown user no-such-user-qth"},
	} {
		if _, err := lookupAccount(tt.user); err == nil || err.Error() != tt.want {
			t.Errorf("lookupAccount(%s) = %v, want %s", tt.user, err, tt.want)
		}
	}
}

// TestParseUser: --user on the command line; User= in a VM file, which
// --user overrides.
func TestParseUser(t *testing.T) {
	vm := filepath.Join(nstest.TrustedDir(t), "vm.conf")
	if err := os.WriteFile(vm, []byte("[VM]\nName=vm1\nUser=nobody\nMemory=256M\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "qemu", "qemu-system-x86_64"}, "qemu"},
		{[]string{"qemu-system-x86_64"}, ""},
		{[]string{"--config", vm}, "nobody"},
		{[]string{"--user", "1000", "--config", vm}, "1000"},
	} {
		c, _ := testConfig()
		if done, err := Parse(tt.args, c); err != nil || done {
			t.Errorf("Parse(%q) = %v, %v", tt.args, done, err)
			continue
		}
		if c.User != tt.want {
			t.Errorf("Parse(%q): User %q, want %q", tt.args, c.User, tt.want)
		}
	}
}

// dupNoCloexec is a new descriptor of f without close-on-exec, as a
// launcher inherits one from a careless parent.
func dupNoCloexec(t *testing.T, f *os.File) int {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// closeStrayFds marks every descriptor but the kept ones close-on-exec;
// cloexecEach does it where close_range cannot (before Linux 5.11).
func TestCloseStrayFds(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stray, kept := dupNoCloexec(t, f), dupNoCloexec(t, f)
	if err := closeStrayFds([]int{1, kept, 100000}); err != nil {
		t.Fatal(err)
	}
	if !cloexec(t, stray) || cloexec(t, kept) {
		t.Errorf("close-on-exec: stray fd %d %v, kept fd %d %v; want true, false", stray, cloexec(t, stray), kept, cloexec(t, kept))
	}
	if cloexec(t, 1) {
		t.Error("stdout marked close-on-exec")
	}
	each := dupNoCloexec(t, f)
	if err := cloexecEach(uint(each), uint(each)); err != nil {
		t.Fatal(err)
	}
	if !cloexec(t, each) || cloexec(t, kept) {
		t.Errorf("cloexecEach(%d, %d): close-on-exec %v, and kept fd %d %v; want true, false", each, each, cloexec(t, each), kept, cloexec(t, kept))
	}
}

func TestUserEnviron(t *testing.T) {
	a := &account{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice"}
	env := []string{"PATH=/root/bin:/usr/bin", "HOME=/root", "USER=root", "TOKEN=x", "TERM=vt220", "LANG=de_DE.UTF-8",
		"LC_ALL=C", "LANGUAGE=de", "DISPLAY=:0", "XAUTHORITY=/root/.Xauthority", "LD_PRELOAD=/root/x.so"}
	base := []string{"PATH=" + userPath, "HOME=/home/alice", "USER=alice", "LOGNAME=alice",
		"TERM=vt220", "LANG=de_DE.UTF-8", "LC_ALL=C", "LANGUAGE=de"}
	if diff := cmp.Diff(base, a.userEnviron(env, false)); diff != "" {
		t.Errorf("without a display (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(base, "DISPLAY=:0", "XAUTHORITY=/root/.Xauthority"), a.userEnviron(env, true)); diff != "" {
		t.Errorf("with a display (-want +got):\n%s", diff)
	}
}
