// Package privs tells whether a helper runs with privileges its caller
// lacks, and drops the capabilities it does not need.
package privs

import (
	"errors"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// atSecure is AT_SECURE from <linux/auxvec.h>.
const atSecure = 23

// Secure reports whether the process runs with privileges its caller did
// not have (setuid, setgid or file capabilities), when the environment is
// the caller's to choose and must be ignored.
func Secure() bool {
	auxv, err := unix.Auxv()
	if err != nil {
		// Without the auxiliary vector, compare the IDs as a fallback.
		return os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid()
	}
	for _, kv := range auxv {
		if kv[0] == atSecure {
			return kv[1] != 0
		}
	}
	return false
}

// KeepOnly drops every capability except c from the effective, permitted
// and inheritable sets of every thread of the process; c is kept only if
// the process has it already. A helper calls it first, so that a bug later
// on can only misuse the one capability it needs, even when root runs it.
func KeepOnly(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	idx, bit := c/32, uint32(1)<<(c%32)
	had := data[idx].Permitted&bit != 0
	data = [2]unix.CapUserData{}
	if had {
		data[idx].Permitted, data[idx].Effective = bit, bit
	}
	// Capabilities are per thread: the Go runtime may already run more
	// than one, so every thread must make the call.
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET,
		uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	switch errno {
	case 0:
		return nil
	case unix.ENOTSUP:
		// A cgo build cannot make the call on every thread; the helpers
		// are built without cgo. Keeping the capabilities is then no
		// worse than before the call: a file capability grants only
		// what it names.
		return ErrNotDropped
	}
	return errno
}

// ErrNotDropped is KeepOnly's error in a build with cgo, where capabilities
// cannot be changed on every thread: nothing was dropped.
var ErrNotDropped = errors.New("capabilities not dropped: built with cgo")
