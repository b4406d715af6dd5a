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
