package integration

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// qemu-ifup run by a user without privileges, as QEMU run as yourself
// runs its script: the kernel refuses the first change, and the line says
// what is missing and the ways to get it.
func TestUnprivilegedHint(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "tap0")
	before := e.port("tap0")
	// The test's binaries are in a directory only root may enter.
	dir := nstest.PublicDir(t)
	ifup := filepath.Join(dir, "qemu-ifup")
	src, err := os.Open(filepath.Join(e.bin, "qemu-ifup"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(ifup, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	e.vars = []string{"QEMU_IFUP_CONFIG=" + filepath.Join(dir, "none.conf"), "QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(dir, "run")}
	cmd := e.cmd("qemu-ifup", "tap0")
	cmd.Path, cmd.Args[0] = ifup, ifup
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nstest.Nobody(t)}
	r := e.runCmd(cmd)
	const want = ": operation not permitted (changing a tap needs root or CAP_NET_ADMIN: run QEMU as root or through qemu-launch, or let the bridge helper make the tap with -netdev bridge,br=BRIDGE,helper=.../qemu-bridge-helper)\n"
	if r.code != 1 || !strings.HasPrefix(r.stderr, "qemu-ifup: ") || !strings.HasSuffix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("qemu-ifup as nobody: %v, want exit 1 and one line ending %q", r, want)
	}
	if after := e.port("tap0"); after != before {
		t.Errorf("tap0 changed: %+v -> %+v", before, after)
	}
}
