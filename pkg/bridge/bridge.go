// Package bridge finds Linux bridges and adds and removes their ports over
// netlink.
package bridge

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	// ErrNotFound is returned (wrapped) when no interface has the name.
	ErrNotFound = errors.New("not found")
	// ErrNotBridge is returned (wrapped) when the interface is not a Linux
	// bridge (an Open vSwitch bridge, a bond, a plain NIC).
	ErrNotBridge = errors.New("not a bridge")
)

// Get returns the Linux bridge called name.
//
// Equivalent to: ip -d link show dev $name type bridge
func Get(h *netlink.Handle, name string) (*netlink.Bridge, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		if IsNotFound(err) {
			return nil, fmt.Errorf("bridge %s %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%s is %w (%s)", name, ErrNotBridge, l.Type())
	}
	return br, nil
}

// Attach makes port a port of br; a port of another bridge moves to br.
//
// Equivalent to: ip link set dev $port master $br
func Attach(h *netlink.Handle, port netlink.Link, br *netlink.Bridge) error {
	return h.LinkSetMasterByIndex(port, br.Index)
}

// Detach removes port from its bridge. A port that is already detached is
// not an error.
//
// Equivalent to: ip link set dev $port nomaster
func Detach(h *netlink.Handle, port netlink.Link) error {
	return h.LinkSetNoMaster(port)
}

// IsNotFound reports whether err says an interface does not exist: a failed
// lookup by name, or ENODEV from an operation on a vanished index.
func IsNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, ErrNotFound)
}
