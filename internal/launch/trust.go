package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"syscall"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/privs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/trust"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/vmconf"
)

// A VM file tells a launcher run as root what to run: QEMU itself, and
// the up- and down-scripts that QEMU runs as root. Whoever may write the
// file, or a program it names, or a directory on their paths, would run
// code as root. So a root launcher reads a VM file, and runs what it
// names, only if root trusts them (package trust). A kernel or an initrd
// is only read, and handed to the guest; [QEMU] Arguments= are the
// trusted file's own words, as a command line root types. A launcher run
// by a user for themselves has no more power than that user, and checks
// nothing.

// checksTrust says whether the launcher runs with more power than
// whoever may write a file: as root, or set-id or with file capabilities.
func checksTrust() bool {
	return os.Geteuid() == 0 || privs.Secure()
}

// loadVM reads the VM file at path, and refuses it, or a program it
// names, that root does not trust, when the launcher checks trust.
func loadVM(path string) (*vmconf.VM, error) {
	check := checksTrust()
	if check {
		if err := trust.Check(path); err != nil {
			// A missing file is said as reading it says it, but not
			// read: in a directory others may write, it may appear
			// right after this look.
			if missing(path) {
				return nil, fmt.Errorf("reading VM file: %w", &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT})
			}
			return nil, fmt.Errorf("VM file %w", err)
		}
	}
	vm, err := vmconf.Load(path)
	if err != nil || !check {
		return vm, err
	}
	// Found as exec finds it. A binary not found runs nothing: the
	// start says so.
	if bin, err := exec.LookPath(vm.Binary); err == nil {
		if err := trust.Check(bin); err != nil {
			return nil, fmt.Errorf("VM file %s: QEMU binary %w", path, err)
		}
	}
	for _, n := range vm.NICs {
		for _, s := range []struct{ key, path string }{{"Script", n.Script}, {"DownScript", n.DownScript}} {
			if s.path == "" || s.path == "no" { // QEMU's "no script"
				continue
			}
			if err := trust.Check(s.path); err != nil {
				return nil, fmt.Errorf("VM file %s: [NIC] %s %s=%w", path, n.ID, s.key, err)
			}
		}
	}
	return vm, nil
}

// missing says that nothing is at path: reading it fails too.
func missing(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist)
}
