package tap

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A Device is a tap created by Create: it exists as long as File is open.
type Device struct {
	File *os.File
	// Name is the interface's name, the one the kernel chose for a
	// pattern with %d.
	Name string
	// VnetHdr reports that the tap carries a virtio-net header
	// (IFF_VNET_HDR) before each frame.
	VnetHdr bool
}

// NoOwner, as the owner of Create and CreateQueues, leaves a tap without
// owner, as QEMU makes its own. Any user who can open /dev/net/tun may
// then attach to it, and to a multiqueue tap while it is in use too: only
// for a tap that does not outlive root's own descriptors.
const NoOwner = -1

// Create creates a tap (IFF_TAP|IFF_NO_PI) called name, which may hold one
// %d for the kernel to number ("tap%d"), owned by the user owner
// (TUNSETOWNER): no other user may attach to it without CAP_NET_ADMIN. It
// is not persistent: the kernel removes it, and takes it off any bridge,
// when the last copy of its file descriptor closes, so a caller that fails
// only has to close File. With vnetHdr it also asks for IFF_VNET_HDR if
// the kernel offers it, as QEMU's bridge helper does for --use-vnet.
//
// Equivalent to what QEMU does for -netdev tap without ifname=, plus
// ip tuntap's user.
func Create(name string, vnetHdr bool, owner int) (*Device, error) {
	d, err := create(name, vnetHdr, false)
	if err != nil {
		return nil, err
	}
	// A single-queue tap takes no second descriptor (EBUSY): nobody
	// could attach before the owner is set.
	if err := d.setOwner(owner); err != nil {
		d.File.Close()
		return nil, err
	}
	return d, nil
}

// CreateQueues creates a multiqueue tap (IFF_MULTI_QUEUE) called name
// with n queues, owned by the user owner, and returns one Device per
// queue, all of the same name; like Create's, the tap lives as long as
// one of their files is open. This is what QEMU opens for
// -netdev tap,queues=N, and what it takes as -netdev tap,fds=.
//
// Until its owner is set, any user may attach a queue of their own to a
// multiqueue tap (tun_not_capable in drivers/net/tun.c). The owner is set
// right after the first queue; the tap must then have exactly the n
// queues opened here, or another process got in first and CreateQueues
// fails.
//
// Equivalent to what QEMU does for -netdev tap,ifname=NAME,queues=N,
// plus ip tuntap's user.
func CreateQueues(name string, n int, vnetHdr bool, owner int) ([]*Device, error) {
	if n < 1 {
		return nil, fmt.Errorf("create tap %s: %d queues", name, n)
	}
	var devs []*Device
	fail := func(err error) ([]*Device, error) {
		for _, d := range devs {
			d.File.Close()
		}
		return nil, err
	}
	for i := 0; i < n; i++ {
		d, err := create(name, vnetHdr, true)
		if err != nil {
			return fail(err)
		}
		devs = append(devs, d)
		if i == 0 {
			if err := d.setOwner(owner); err != nil {
				return fail(err)
			}
		}
		// A kernel-chosen name: the other queues attach to it.
		name = d.Name
	}
	if owner != NoOwner {
		if err := onlyQueues(name, n); err != nil {
			return fail(err)
		}
	}
	return devs, nil
}

// setOwner makes the tap the user's.
func (d *Device) setOwner(owner int) error {
	if owner == NoOwner {
		return nil
	}
	if err := unix.IoctlSetInt(int(d.File.Fd()), unix.TUNSETOWNER, owner); err != nil {
		return fmt.Errorf("create tap %s: set owner %d: %w", d.Name, owner, err)
	}
	return nil
}

// onlyQueues checks that the multiqueue tap called name has n queues, no
// more: the ones its creator opened.
func onlyQueues(name string, n int) error {
	c, err := link.Open()
	if err != nil {
		return fmt.Errorf("create tap %s: open netlink: %w", name, err)
	}
	defer c.Close()
	l, err := c.ByName(name)
	if err != nil {
		return fmt.Errorf("create tap %s: look up: %w", name, err)
	}
	if l.Tun == nil {
		return fmt.Errorf("create tap %s: no longer a tap", name)
	}
	if got := l.Tun.Queues + l.Tun.DisabledQueues; got != n {
		return fmt.Errorf("create tap %s: %d queues where %d were opened: another process attached to it before its owner was set", name, got, n)
	}
	return nil
}

// Close closes a tap's descriptor after turning its persistence off:
// whoever holds a copy of it may have turned it on (TUNSETPERSIST), which
// would keep the tap, and its port, once every descriptor is closed.
func Close(f *os.File) error {
	perr := unix.IoctlSetInt(int(f.Fd()), unix.TUNSETPERSIST, 0)
	if err := f.Close(); err != nil {
		return err
	}
	if perr != nil && !errors.Is(perr, unix.EBADFD) {
		return fmt.Errorf("turn persistence off: %w", perr)
	}
	return nil
}

func create(name string, vnetHdr, multiQueue bool) (*Device, error) {
	// The one %d is the kernel's to fill in; the rest is checked as a
	// name (a digit stands in, as long as the widest number).
	if strings.Count(name, "%") > 1 || (strings.Contains(name, "%") && !strings.Contains(name, "%d")) {
		return nil, &link.NameError{Name: name, Reason: "holds a '%' other than one %d"}
	}
	if err := link.ValidateName(strings.Replace(name, "%d", "0", 1)); err != nil {
		return nil, err
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create tap %s: open /dev/net/tun: %w", name, err)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if multiQueue {
		flags |= unix.IFF_MULTI_QUEUE
	}
	if vnetHdr {
		feat, err := unix.IoctlGetUint32(fd, unix.TUNGETFEATURES)
		if err == nil && feat&unix.IFF_VNET_HDR != 0 {
			flags |= unix.IFF_VNET_HDR
		}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create tap %s: %w", name, err)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create tap %s: %w", name, err)
	}
	return &Device{
		File:    os.NewFile(uintptr(fd), "/dev/net/tun"),
		Name:    ifr.Name(),
		VnetHdr: flags&unix.IFF_VNET_HDR != 0,
	}, nil
}
