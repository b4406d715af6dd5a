package tap

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

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
				d, err := Create(tt.name, true)
				devs = []*Device{d}
				return err
			}
			var err error
			devs, err = CreateQueues(tt.name, tt.queues, true)
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
	err := ns.Do(func() error { _, err := Create(strings.Repeat("t", 16), false); return err })
	if err == nil || !strings.Contains(err.Error(), "16 bytes, longer than 15") {
		t.Errorf("Create of a 16-byte name: %v", err)
	}
	if _, err := CreateQueues("mq1", 0, false); err == nil {
		t.Error("CreateQueues with 0 queues succeeded")
	}
}
