package launch

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// stranger is a local user who is neither root nor QEMU's user.
var stranger = &syscall.Credential{Uid: 4242, Gid: 4242, Groups: []uint32{}}

// mqArgs is a VM named tw with one two-queue virtio-net NIC on netdev n0
// (tap tw-n0), kept paused.
func mqArgs() []string {
	return []string{qemu, "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "64", "-name", "tw", "-S",
		"-netdev", "tap,id=n0,queues=2", "-device", "virtio-net-pci,netdev=n0,mq=on,vectors=6"}
}

// strangerCannotAttach checks that another user's attempt to join the
// multiqueue tap fails with EPERM: a queue would give them a share of the
// VM's traffic and a way onto the bridge past its ACL.
func strangerCannotAttach(t *testing.T, ns *nstest.NS, tap string) {
	t.Helper()
	err := ns.AsUser(stranger, func() error {
		f, err := nstest.AttachQueue(tap)
		if err == nil {
			f.Close()
		}
		return err
	})
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("uid %d attaching a queue to %s: %v, want EPERM", stranger.Uid, tap, err)
	}
}

// TestUserTapOtherUserCannotAttach: the multiqueue tap qemu-launch
// --user opens for QEMU is that user's; no other user may attach a queue.
func TestUserTapOtherUserCannotAttach(t *testing.T) {
	requireQEMU(t)
	nstest.OpenTun(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	l := start(t, ns, nil, append([]string{"--user", "nobody", "--bridge", "br-a", "--shutdown-timeout", "1s"}, mqArgs()...)...)
	l.waitFor("READY=1")
	strangerCannotAttach(t, ns, "tw-n0")
	tun, err := ns.Conn.ByName("tw-n0")
	if err != nil {
		t.Fatal(err)
	}
	if nobody := nstest.Nobody(t); tun.Tun.Owner != int64(nobody.Uid) {
		t.Errorf("tw-n0: owner %d, want nobody's uid %d", tun.Tun.Owner, nobody.Uid)
	}
	l.signal(syscall.SIGTERM)
	if code := l.wait(); code != 0 {
		t.Errorf("exit status %d, want 0\nstderr:\n%s", code, l.stderr.String())
	}
}

// TestRootMultiqueueTapOtherUserCannotAttach: QEMU run as root makes its
// multiqueue tap itself, with no owner; qemu-ifup, which QEMU runs on it,
// makes it root's, so that no other user may attach a queue.
func TestRootMultiqueueTapOtherUserCannotAttach(t *testing.T) {
	requireQEMU(t)
	nstest.OpenTun(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	l := start(t, ns, nil, append([]string{"--bridge", "br-a", "--shutdown-timeout", "1s"}, mqArgs()...)...)
	l.waitFor("READY=1")
	strangerCannotAttach(t, ns, "tw-n0")
	l.signal(syscall.SIGTERM)
	if code := l.wait(); code != 0 {
		t.Errorf("exit status %d, want 0\nstderr:\n%s", code, l.stderr.String())
	}
}
