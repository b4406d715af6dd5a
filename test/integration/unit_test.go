package integration

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// unitSetting returns the value of key in the qemu-launch@.service unit
// the packages install.
func unitSetting(t *testing.T, key string) (string, bool) {
	t.Helper()
	root, err := nstest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "packaging/systemd/qemu-launch@.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	val, found := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			val, found = v, true
		}
	}
	return val, found
}

// TestBridgeHelperUnderUnit checks that a QEMU run by qemu-launch@.service
// as User= can still use qemu-bridge-helper: the helper, run as nobody
// under the unit's capability bounding set, gets its file capability and
// sends a tap. The unit must not set no_new_privs, which prctl(2) says
// keeps execve from granting file capabilities, nor an option that
// implies it. (The 6.18 kernel of the build machines granted the
// capability under no_new_privs all the same, so that case is not run:
// it would pass here and fail on other kernels.)
func TestBridgeHelperUnderUnit(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireTool(t, "setpriv", "util-linux")
	bounding, ok := unitSetting(t, "CapabilityBoundingSet")
	if !ok {
		t.Fatal("the unit sets no CapabilityBoundingSet=")
	}
	if nnp, _ := unitSetting(t, "NoNewPrivileges"); nnp != "no" {
		t.Errorf("the unit sets NoNewPrivileges=%s, want no: no_new_privs voids the helper's file capability", nnp)
	}
	for _, implied := range []string{"SystemCallFilter", "SystemCallArchitectures", "RestrictAddressFamilies",
		"RestrictNamespaces", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectClock", "MemoryDenyWriteExecute", "RestrictRealtime", "RestrictSUIDSGID", "DynamicUser", "LockPersonality"} {
		if v, ok := unitSetting(t, implied); ok {
			t.Errorf("the unit sets %s=%s, which implies NoNewPrivileges=yes", implied, v)
		}
	}
	var caps []string
	for _, c := range strings.Fields(bounding) {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	dir := nstest.PublicDir(t)
	acl := filepath.Join(dir, "bridge.conf")
	if err := os.WriteFile(acl, []byte("allow virbr0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	helper := nstest.BuildWithACL(t, dir, acl, "qemu-bridge-helper")
	nstest.SetCap(t, helper, "cap_net_admin+ep")
	nstest.OpenTun(t)
	user := nstest.Nobody(t)

	ns := nstest.New(t)
	ns.AddBridge(t, "virbr0", 0)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(sp[0]), "ours"), os.NewFile(uintptr(sp[1]), "theirs")
	defer ours.Close()
	args := []string{"--reuid=" + itoa(user.Uid), "--regid=" + itoa(user.Gid), "--clear-groups",
		"--bounding-set=-all," + strings.Join(caps, ","),
		"--", helper, "--use-vnet", "--fd=3", "--br=virbr0"}
	cmd := exec.Command("setpriv", args...)
	cmd.Env = []string{}
	cmd.ExtraFiles = []*os.File{theirs}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	code, err := nstest.ExitStatus(ns.Run(cmd))
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("setpriv %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
	}
	oob := make([]byte, unix.CmsgSpace(4))
	if _, oobn, _, _, err := unix.Recvmsg(int(ours.Fd()), make([]byte, 1), oob, unix.MSG_DONTWAIT); err != nil || oobn == 0 {
		t.Errorf("no descriptor came back: %v", err)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
