package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Tests of unprivileged use: a user who is not root, helpers that hold a
// file capability, /dev/net/tun opened to everyone.

// Nobody returns the credentials of the user "nobody", with no
// supplementary groups: a caller with no privileges at all.
func Nobody(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// PublicDir returns a new directory every user may read and enter (a
// test's TempDir is root's alone), removed when the test ends. It is a
// TrustedDir: an ACL file root puts there passes the helpers' checks.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir := TrustedDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// RequireTool skips (or, under QTH_REQUIRE_INTEGRATION=1, fails) a test
// that needs a program the machine lacks.
func RequireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	Skip(t, fmt.Sprintf("test needs %s (Debian package %s; make test installs it as root)", name, pkg))
}

// SetCap gives the file at path the file capabilities caps, as setcap
// takes them ("cap_net_admin+ep").
func SetCap(t testing.TB, path, caps string) {
	t.Helper()
	RequireTool(t, "setcap", "libcap2-bin")
	if out, err := exec.Command("setcap", caps, path).CombinedOutput(); err != nil {
		t.Fatalf("setcap %s %s: %v: %s", caps, path, err, out)
	}
}

// BuildWithACL builds the command cmd (qemu-bridge-helper, qemu-ifup...)
// into dir with the bridge ACL file at acl, a build-time setting: the
// helpers take it from nowhere else. It returns the binary's path.
func BuildWithACL(t testing.TB, dir, acl, cmd string) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, cmd)
	c := exec.Command("go", "build", "-trimpath", "-o", out,
		"-ldflags", "-X github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bridgeacl.Path="+acl,
		"./cmd/"+cmd)
	c.Dir = root
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", cmd, err, b)
	}
	return out
}

// tunPath is the tun/tap clone device.
const tunPath = "/dev/net/tun"

// OpenTun makes /dev/net/tun readable and writable by every user, as udev
// makes it on a normal host (the build machines keep it 0600), and puts
// its mode back when the test ends, also when it fails. Tests that do so
// take turns through a lock, so that one never restores the mode under
// another.
func OpenTun(t testing.TB) {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "qth-dev-net-tun.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		t.Fatal(err)
	}
	fi, err := os.Stat(tunPath)
	if err != nil {
		lock.Close()
		t.Fatal(err)
	}
	mode := fi.Mode().Perm()
	t.Cleanup(func() {
		if err := os.Chmod(tunPath, mode); err != nil {
			t.Errorf("restore the mode of %s: %v", tunPath, err)
		}
		lock.Close()
	})
	if err := os.Chmod(tunPath, 0o666); err != nil {
		t.Fatal(err)
	}
}
