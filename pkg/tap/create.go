package tap

import (
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

// Create creates a tap (IFF_TAP|IFF_NO_PI) called name, which may hold one
// %d for the kernel to number ("tap%d"). It is not persistent: the kernel
// removes it, and takes it off any bridge, when the last copy of its file
// descriptor closes, so a caller that fails only has to close File. With
// vnetHdr it also asks for IFF_VNET_HDR if the kernel offers it, as QEMU's
// bridge helper does for --use-vnet.
//
// Equivalent to what QEMU does for -netdev tap without ifname=.
func Create(name string, vnetHdr bool) (*Device, error) {
	return create(name, vnetHdr, false)
}

// CreateQueues creates a multiqueue tap (IFF_MULTI_QUEUE) called name
// with n queues and returns one Device per queue, all of the same name;
// like Create's, the tap lives as long as one of their files is open.
// This is what QEMU opens for -netdev tap,queues=N, and what it takes as
// -netdev tap,fds=.
//
// Equivalent to what QEMU does for -netdev tap,ifname=NAME,queues=N.
func CreateQueues(name string, n int, vnetHdr bool) ([]*Device, error) {
	if n < 1 {
		return nil, fmt.Errorf("create tap %s: %d queues", name, n)
	}
	var devs []*Device
	for i := 0; i < n; i++ {
		d, err := create(name, vnetHdr, true)
		if err != nil {
			for _, d := range devs {
				d.File.Close()
			}
			return nil, err
		}
		devs = append(devs, d)
		// A kernel-chosen name: the other queues attach to it.
		name = d.Name
	}
	return devs, nil
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
