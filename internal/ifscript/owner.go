package ifscript

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A multiqueue tap QEMU makes itself (-netdev tap,queues=N, QEMU run as
// root) has no owner, and the kernel then lets any user who can open
// /dev/net/tun attach a queue of their own to it (tun_not_capable in
// drivers/net/tun.c): a share of the VM's traffic, and frames of any
// source on the bridge. QEMU runs the up-script right after opening the
// first queue and leaves that queue's descriptor open in it, so qemu-ifup
// makes the tap its caller's (root's) through that descriptor, before
// QEMU opens the other queues, and makes sure that no other process
// attached in between: the tap must have that one queue only.

// tunDevice is /dev/net/tun's device number (misc 10, minor 200).
var tunDevice = unix.Mkdev(10, 200)

// claimQueues sets the owner of the multiqueue tap l, when it has none, to
// uid, through the queue this process inherited from QEMU. It reports
// whether it did; a tap with an owner or a group, a single-queue tap, and
// a run without QEMU's descriptor (by hand, or by qemu-launch for a tap
// it made with an owner) are left as they are.
func claimQueues(conn *link.Conn, l *link.Link, uid int) (bool, error) {
	if l.Tun == nil || !l.Tun.MultiQueue || l.Tun.Owner != -1 || l.Tun.Group != -1 {
		return false, nil
	}
	fd := inheritedQueue(l.Name)
	if fd < 0 {
		return false, nil
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOWNER, uid); err != nil {
		return false, fmt.Errorf("%s: set owner %d: %w", l.Name, uid, err)
	}
	now, err := conn.ByIndex(l.Index)
	if err != nil {
		return false, fmt.Errorf("%s: look up: %w", l.Name, err)
	}
	if now.Tun == nil {
		return false, fmt.Errorf("%s: no longer a tap", l.Name)
	}
	if n := now.Tun.Queues + now.Tun.DisabledQueues; n != 1 {
		return false, fmt.Errorf("%s: %d queues attached where QEMU opened one before running its up-script: "+
			"another process attached to the tap while it had no owner; not making it a port", l.Name, n)
	}
	return true, nil
}

// inheritedQueue returns a descriptor of this process that is a queue of
// the tap called name, -1 if none is.
func inheritedQueue(name string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != tunDevice {
			continue
		}
		ifr, err := unix.NewIfreq("")
		if err != nil {
			continue
		}
		if unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr) == nil && ifr.Name() == name {
			return fd
		}
	}
	return -1
}

// claim makes the multiqueue tap QEMU handed over its caller's, if it has
// no owner (see claimQueues), and says so.
func claim(conn *link.Conn, ifname string, log logger) error {
	l, err := conn.ByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: look up: %w", ifname, err)
	}
	uid := os.Getuid()
	done, err := claimQueues(conn, l, uid)
	if done {
		log.info(fmt.Sprintf("set owner to uid %d (a multiqueue tap without owner takes any user's queue)", uid), "")
	}
	return err
}
