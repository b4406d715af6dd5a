package nstest

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AsUser runs fn inside the namespace on an OS thread whose credentials
// are cred's, as another local user's process would run: the thread
// drops root's uid, gids and so its capabilities, and is thrown away
// afterwards. Linux credentials are per thread; the raw system calls
// change this thread's alone (Go's syscall.Setresuid would change every
// thread of the test).
func (n *NS) AsUser(cred *syscall.Credential, fn func() error) error {
	return n.Do(func() error {
		groups := make([]uint32, len(cred.Groups))
		copy(groups, cred.Groups)
		var gp uintptr
		if len(groups) > 0 {
			gp = uintptr(unsafe.Pointer(&groups[0]))
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), gp, 0); e != 0 {
			return fmt.Errorf("setgroups: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(cred.Gid), uintptr(cred.Gid), uintptr(cred.Gid)); e != 0 {
			return fmt.Errorf("setresgid %d: %w", cred.Gid, e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(cred.Uid), uintptr(cred.Uid), uintptr(cred.Uid)); e != 0 {
			return fmt.Errorf("setresuid %d: %w", cred.Uid, e)
		}
		return fn()
	})
}

// AttachQueue does what any local user who can open /dev/net/tun may try
// on another's multiqueue tap: attach one more queue to the tap called
// name (TUNSETIFF with IFF_MULTI_QUEUE). It returns the queue's file, to
// close, or the kernel's error: EPERM when the tap's owner or group is
// set and not the caller's (tun_not_capable in drivers/net/tun.c).
// Run it through AsUser; the test needs OpenTun for a user to open the
// clone device.
func AttachQueue(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach a queue to %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}
