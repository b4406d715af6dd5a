package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// callHelper runs qemu-bridge-helper as a user with no privileges would
// through QEMU, for virbr0, and returns the tap it sent and its name.
func callHelper(t *testing.T, ns *nstest.NS, helper string) (*os.File, string) {
	t.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(sp[0]), "ours")
	theirs := os.NewFile(uintptr(sp[1]), "theirs")
	defer ours.Close()
	cmd := exec.Command(helper, "--use-vnet", "--fd=3", "--br=virbr0")
	cmd.ExtraFiles = []*os.File{theirs}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nstest.Nobody(t)}
	code, err := nstest.ExitStatus(ns.Run(cmd))
	theirs.Close()
	if err != nil || code != 0 {
		t.Fatalf("qemu-bridge-helper: exit %d, %v, stderr %q", code, err, errb.String())
	}
	fd, _ := nstest.RecvFD(t, int(ours.Fd()))
	ifr, _ := unix.NewIfreq("")
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		t.Fatalf("TUNGETIFF: %v", err)
	}
	return os.NewFile(uintptr(fd), "tap"), ifr.Name()
}

// TestPersistentTapSwept: the user who got a tap from qemu-bridge-helper
// makes it persistent (TUNSETPERSIST needs no privilege) and closes it;
// the tap outlives it on the bridge. The helper's next call removes it,
// and leaves alone a persistent tap an administrator made, which nobody
// holds either.
func TestPersistentTapSwept(t *testing.T) {
	nstest.RequireRoot(t)
	dir := nstest.PublicDir(t)
	acl := filepath.Join(dir, "bridge.conf")
	writeACL(t, acl, "allow virbr0\n")
	helper := nstest.BuildWithACL(t, dir, acl, "qemu-bridge-helper")
	nstest.SetCap(t, helper, "cap_net_admin+ep")
	nstest.OpenTun(t)
	ns := nstest.New(t)
	br := ns.AddBridge(t, "virbr0", 0)
	if err := ns.Handle.LinkSetMasterByIndex(ns.AddTap(t, "keep0"), br.Index); err != nil {
		t.Fatal(err)
	}

	f, first := callHelper(t, ns, helper)
	if err := unix.IoctlSetInt(int(f.Fd()), unix.TUNSETPERSIST, 1); err != nil {
		t.Fatalf("TUNSETPERSIST on the helper's tap: %v", err)
	}
	f.Close()
	persisted := ns.Snapshot(t, first)
	if persisted.Master != "virbr0" {
		t.Fatalf("%s after its descriptor closed: %+v, want a persistent port of virbr0", first, persisted)
	}

	// The kernel may give the new tap the removed one's name: the
	// index tells them apart.
	f, second := callHelper(t, ns, helper)
	defer f.Close()
	taps := ns.Taps(t)
	slices.Sort(taps)
	if want := []string{"keep0", second}; !slices.Equal(taps, want) || ns.Snapshot(t, second).Index == persisted.Index {
		t.Errorf("taps after the second call: %q (%s index %d), want %q: %s (index %d) removed, keep0 kept",
			taps, second, ns.Snapshot(t, second).Index, want, first, persisted.Index)
	}
	if got := ns.Snapshot(t, "keep0").Master; got != "virbr0" {
		t.Errorf("keep0: master %q, want still virbr0", got)
	}
}
