package integration

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// stranger is a local user who is neither root nor QEMU's user.
var stranger = &syscall.Credential{Uid: 4242, Gid: 4242, Groups: []uint32{}}

// TestIfupOwnsQEMUMultiqueueTap runs qemu-ifup as QEMU run as root does
// on a multiqueue tap it made itself: with no owner, its first queue open
// and inherited as fd 3. qemu-ifup makes the tap root's, so another
// user's queue is refused with EPERM; and refuses to make it a port when
// another user's queue got in first.
func TestIfupOwnsQEMUMultiqueueTap(t *testing.T) {
	nstest.OpenTun(t)
	for _, early := range []bool{false, true} {
		name := map[bool]string{false: "alone", true: "stranger attached first"}[early]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.ns.AddBridge(t, "virbr0", 0)
			var qemu []*tap.Device
			if err := e.ns.Do(func() (err error) { qemu, err = tap.CreateQueues("mq0", 1, true, tap.NoOwner); return err }); err != nil {
				t.Fatal(err)
			}
			defer qemu[0].File.Close()
			if early {
				var theirs *os.File
				if err := e.ns.AsUser(stranger, func() (err error) { theirs, err = nstest.AttachQueue("mq0"); return err }); err != nil {
					t.Fatalf("uid %d attaching to a tap without owner: %v", stranger.Uid, err)
				}
				defer theirs.Close()
			}
			cmd := e.cmd("qemu-ifup", "mq0")
			cmd.ExtraFiles = []*os.File{qemu[0].File}
			r := e.runCmd(cmd)
			l, err := e.ns.Conn.ByName("mq0")
			if err != nil {
				t.Fatal(err)
			}
			if early {
				want := "qemu-ifup: mq0: 2 queues attached where QEMU opened one before running its up-script: another process attached to the tap while it had no owner; not making it a port\n"
				if r.code != 1 || r.stderr != want {
					t.Errorf("qemu-ifup: %v, want exit 1 and %q", r, want)
				}
				if p := e.port("mq0"); p.Master != "" {
					t.Errorf("mq0 = %+v, want on no bridge", p)
				}
				return
			}
			if r.code != 0 || !strings.HasPrefix(r.stderr, "qemu-ifup: mq0: set owner to uid 0 (a multiqueue tap without owner takes any user's queue)\n") {
				t.Errorf("qemu-ifup: %v, want exit 0, the owner set first", r)
			}
			if l.Tun.Owner != 0 || e.port("mq0").Master != "virbr0" {
				t.Errorf("mq0: %+v, master %q; want owner 0, on virbr0", l.Tun, e.port("mq0").Master)
			}
			err = e.ns.AsUser(stranger, func() error {
				f, err := nstest.AttachQueue("mq0")
				if err == nil {
					f.Close()
				}
				return err
			})
			if !errors.Is(err, unix.EPERM) {
				t.Errorf("uid %d attaching to mq0 after qemu-ifup: %v, want EPERM", stranger.Uid, err)
			}
		})
	}
}
