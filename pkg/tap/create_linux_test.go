package tap

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestCreate creates taps as QEMU and the bridge helper do and reads them
// back as ip -d link shows them: a tap, not persistent (gone once its
// descriptors close), multiqueue with every queue when asked.
func TestCreate(t *testing.T) {
	ns := nstest.New(t)
	tests := []struct {
		name   string
		queues int // 0: Create
		want   string
	}{
		{name: "tap%d", want: "tap0"},
		{name: "vm1-net0", want: "vm1-net0"},
		{name: "mq0", queues: 3, want: "mq0"},
		{name: "mq%d", queues: 2, want: "mq0"},
	}
	for _, tt := range tests {
		var devs []*Device
		err := ns.Do(func() error {
			if tt.queues == 0 {
				d, err := Create(tt.name, true, NoOwner)
				devs = []*Device{d}
				return err
			}
			var err error
			devs, err = CreateQueues(tt.name, tt.queues, true, NoOwner)
			return err
		})
		if err != nil {
			t.Fatalf("create %s: %v", tt.name, err)
		}
		for _, d := range devs {
			if d.Name != tt.want {
				t.Errorf("create %s: named %s, want %s", tt.name, d.Name, tt.want)
			}
		}
		l, ok := ns.Link(t, tt.want).(*netlink.Tuntap)
		switch {
		case !ok || l.Mode != netlink.TUNTAP_MODE_TAP:
			t.Errorf("%s: %v, want a tap", tt.want, ns.Link(t, tt.want))
		case tt.queues > 0 && (l.Flags&netlink.TUNTAP_MULTI_QUEUE == 0 || l.Queues != tt.queues):
			t.Errorf("%s: flags %v, %d queues; want multiqueue with %d", tt.want, l.Flags, l.Queues, tt.queues)
		case l.Flags&netlink.TUNTAP_NO_PI == 0:
			t.Errorf("%s: flags %v, want no packet information", tt.want, l.Flags)
		case !l.NonPersist:
			t.Errorf("%s: persistent, want it to die with its descriptors", tt.want)
		}
		for _, d := range devs {
			d.File.Close()
		}
		if ns.Exists(tt.want) {
			t.Errorf("%s still exists once its descriptors closed", tt.want)
		}
	}
	// The kernel truncates names, so a long one must not reach it.
	err := ns.Do(func() error { _, err := Create(strings.Repeat("t", 16), false, NoOwner); return err })
	if err == nil || !strings.Contains(err.Error(), "16 bytes, longer than 15") {
		t.Errorf("Create of a 16-byte name: %v", err)
	}
	if _, err := CreateQueues("mq1", 0, false, NoOwner); err == nil {
		t.Error("CreateQueues with 0 queues succeeded")
	}
}

// TestCreateOwner: a tap made for a user is that user's. On a multiqueue
// one, the user may attach another queue, anyone else fails with EPERM;
// with no owner, anyone may, which CreateQueues catches when it happened
// before the owner was set.
func TestCreateOwner(t *testing.T) {
	nstest.OpenTun(t)
	ns := nstest.New(t)
	owner := &syscall.Credential{Uid: 4242, Gid: 4242, Groups: []uint32{}}
	stranger := &syscall.Credential{Uid: 4243, Gid: 4243, Groups: []uint32{}}
	attach := func(cred *syscall.Credential, name string) error {
		return ns.AsUser(cred, func() error {
			f, err := nstest.AttachQueue(name)
			if err == nil {
				f.Close()
			}
			return err
		})
	}
	var devs []*Device
	if err := ns.Do(func() (err error) { devs, err = CreateQueues("mq0", 2, false, int(owner.Uid)); return err }); err != nil {
		t.Fatal(err)
	}
	defer closeAll(devs)
	if l, err := ns.Conn.ByName("mq0"); err != nil || l.Tun.Owner != int64(owner.Uid) || l.Tun.Queues != 2 {
		t.Errorf("mq0: %+v, %v; want owner %d, 2 queues", l.Tun, err, owner.Uid)
	}
	if err := attach(stranger, "mq0"); !errors.Is(err, unix.EPERM) {
		t.Errorf("uid %d attaching to mq0: %v, want EPERM", stranger.Uid, err)
	}
	if err := attach(owner, "mq0"); err != nil {
		t.Errorf("owner attaching to mq0: %v", err)
	}

	var single *Device
	if err := ns.Do(func() (err error) { single, err = Create("sq0", false, int(owner.Uid)); return err }); err != nil {
		t.Fatal(err)
	}
	defer single.File.Close()
	if l, err := ns.Conn.ByName("sq0"); err != nil || l.Tun.Owner != int64(owner.Uid) {
		t.Errorf("sq0: %+v, %v; want owner %d", l.Tun, err, owner.Uid)
	}

	// A queue attached while the tap had no owner.
	var open []*Device
	if err := ns.Do(func() (err error) { open, err = CreateQueues("mq1", 1, false, NoOwner); return err }); err != nil {
		t.Fatal(err)
	}
	defer closeAll(open)
	var theirs *os.File
	if err := ns.AsUser(stranger, func() (err error) { theirs, err = nstest.AttachQueue("mq1"); return err }); err != nil {
		t.Fatalf("uid %d attaching to mq1 without owner: %v", stranger.Uid, err)
	}
	defer theirs.Close()
	err := ns.Do(func() error { return onlyQueues("mq1", 1) })
	if want := "another process attached to it before its owner was set"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("onlyQueues with a stranger's queue: %v, want %q", err, want)
	}
}

func closeAll(devs []*Device) {
	for _, d := range devs {
		d.File.Close()
	}
}

// TestClose: a tap whose holder made it persistent goes all the same
// when Close closes the last descriptor.
func TestClose(t *testing.T) {
	ns := nstest.New(t)
	var d *Device
	if err := ns.Do(func() (err error) { d, err = Create("p0", false, NoOwner); return err }); err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(int(d.File.Fd()), unix.TUNSETPERSIST, 1); err != nil {
		t.Fatal(err)
	}
	if err := Close(d.File); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if ns.Exists("p0") {
		t.Error("p0 persists after Close")
	}
}
