package ifscript

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// lockWait bounds how long a helper waits for another one to finish with
// the same tap.
const lockWait = 10 * time.Second

// The helpers serialise their work on one tap, so that an ifup and an
// ifdown started at once never interleave their steps (an ifdown
// detaching the tap between ifup's attach and its promisc would leave it
// off the bridge yet promiscuous), with a lock in the namespace's run
// directory (package rundir), which no other user can hold.

// lockAbstract is the lock of a helper that cannot enter the run
// directory (run by a user with a file capability): an abstract unix
// socket named after the tap, per network namespace and released when
// the process exits. Any local user can bind such a name, so it is only
// the fallback.
func lockAbstract(ifname string) (release func(), err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: lock: %w", ifname, err)
	}
	addr := &unix.SockaddrUnix{Name: "@qemu-tap-helpers/" + ifname}
	deadline := time.Now().Add(lockWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err = unix.Bind(fd, addr)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) || time.Now().After(deadline) {
			unix.Close(fd)
			if errors.Is(err, unix.EADDRINUSE) {
				return nil, fmt.Errorf("%s: busy: another qemu-ifup or qemu-ifdown kept it for %v", ifname, lockWait)
			}
			return nil, fmt.Errorf("%s: lock: %w", ifname, err)
		}
		time.Sleep(pause)
	}
}
