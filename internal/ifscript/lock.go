package ifscript

import (
	"errors"
	"fmt"
	"os"
	"strconv"
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
// the process exits. Any local user can bind such a name, so the holder
// listens and a waiter asks the kernel who it is (SO_PEERCRED): a name
// held by anyone but root or the caller, or by a socket that takes no
// connection, is a squatter, not a helper, and is not waited for (squat
// names it then, for the log). Only the caller's own helpers and root's
// may act on the caller's taps, so nothing is lost by going on.
//
// A waiter never blocks in connect(): a squatter that listens and never
// accepts fills its queue, and a blocking connect would then wait for
// ever. A full queue hides who holds the name, so it is waited for as a
// holder is, and when it is still full after lockWait the helper goes on
// with a warning: nobody knows whose it is, and a helper's own queue
// (holderBacklog) does not fill.
func lockAbstract(ifname string) (release func(), squat string, err error) {
	return lockAbstractFor(ifname, lockWait)
}

// holderBacklog is the listen backlog of a helper holding the lock. The
// holder never accepts, and each look of each waiter stays queued until it
// lets go: a short queue would fill with genuine waiters and make them
// take the holder for a squatter.
const holderBacklog = 4096

// lockAbstractFor is lockAbstract with the wait given.
func lockAbstractFor(ifname string, wait time.Duration) (release func(), squat string, err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("%s: lock: %w", ifname, err)
	}
	addr := &unix.SockaddrUnix{Name: "@qemu-tap-helpers/" + ifname}
	deadline := time.Now().Add(wait)
	full := false
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err = unix.Bind(fd, addr)
		if err == nil {
			err = unix.Listen(fd, holderBacklog)
		}
		if err == nil {
			return func() { unix.Close(fd) }, "", nil
		}
		if errors.Is(err, unix.EADDRINUSE) {
			var who string
			who, full = squatter(addr)
			if who != "" {
				unix.Close(fd)
				return func() {}, fmt.Sprintf("lock %s held by %s, not a helper of this user: going on without it", addr.Name, who), nil
			}
		}
		if !errors.Is(err, unix.EADDRINUSE) || time.Now().After(deadline) {
			unix.Close(fd)
			switch {
			case errors.Is(err, unix.EADDRINUSE) && full:
				return func() {}, fmt.Sprintf("lock %s held by a socket whose queue stayed full for %v (it accepts no connection), not a helper: going on without it", addr.Name, wait), nil
			case errors.Is(err, unix.EADDRINUSE):
				return nil, "", fmt.Errorf("%s: busy: another qemu-ifup or qemu-ifdown kept it for %v", ifname, wait)
			}
			return nil, "", fmt.Errorf("%s: lock: %w", ifname, err)
		}
		time.Sleep(pause)
	}
}

// squatter says who holds addr when that is not one of this user's
// helpers or root's: "uid N", or "a socket that takes no connection";
// "" for a genuine holder, or one that let go meanwhile, and for a holder
// whose queue is full (full), which cannot be asked who it is.
func squatter(addr *unix.SockaddrUnix) (who string, full bool) {
	// Non-blocking: connecting to a full queue fails with EAGAIN at once
	// (a unix socket connects or fails, it never goes in progress).
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	switch err := unix.Connect(fd, addr); {
	case errors.Is(err, unix.ECONNREFUSED):
		return "a socket that takes no connection", false
	case errors.Is(err, unix.EAGAIN):
		return "", true
	case err != nil:
		return "", false
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || cred.Uid == 0 || int(cred.Uid) == os.Getuid() {
		return "", false
	}
	return "uid " + strconv.FormatUint(uint64(cred.Uid), 10), false
}
