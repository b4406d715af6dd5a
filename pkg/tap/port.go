package tap

import (
	"fmt"
	"net"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
)

// A MACPolicy says what ifup does to the tap's own MAC address (not the
// guest's, which QEMU sets on the emulated NIC).
type MACPolicy int

const (
	// MACHigh sets the first byte to 0xFE and keeps the other five, as
	// libvirt and qemu-bridge-helper do: a Linux bridge without a MAC of its
	// own takes its lowest port MAC, so a high tap MAC never becomes the
	// bridge's address and never makes it change.
	MACHigh MACPolicy = iota
	// MACKeep leaves the MAC the kernel gave the tap.
	MACKeep
)

func (p MACPolicy) String() string {
	if p == MACKeep {
		return "keep"
	}
	return "high"
}

// ParseMACPolicy parses "high" or "keep".
func ParseMACPolicy(s string) (MACPolicy, error) {
	switch s {
	case "high":
		return MACHigh, nil
	case "keep":
		return MACKeep, nil
	}
	return 0, fmt.Errorf("MAC policy %q is neither high nor keep", s)
}

// highMAC returns mac with its first byte set to 0xFE.
func highMAC(mac net.HardwareAddr) net.HardwareAddr {
	out := make(net.HardwareAddr, len(mac))
	copy(out, mac)
	if len(out) > 0 {
		out[0] = 0xfe
	}
	return out
}

// A Port is the state ifup gives a tap: a port of Bridge with the bridge's
// MTU (or MTU), a high MAC, promiscuous and up.
type Port struct {
	Bridge string
	// MTU is the tap's MTU; 0 means the bridge's, so that adding the
	// port never lowers the bridge's MTU.
	MTU     int
	MAC     MACPolicy
	Promisc bool
	// AllowMove lets ifup take a tap that is a port of another bridge.
	AllowMove bool
	// VLAN is the port's access VLAN (an Open vSwitch port's tag); 0 for
	// none. VLANs on Linux bridges are not implemented.
	VLAN int
	// Trunks are the VLANs an Open vSwitch port trunks; empty for none
	// given.
	Trunks bridge.VLANSet
	// Flags are the flags of a Linux bridge port (isolated, learning,
	// unicast flooding); those not given are left as the kernel has them.
	Flags bridge.PortFlags
	// GuestMAC is the MAC address of the guest's NIC on the tap, as
	// net.HardwareAddr.String gives it, or "" when unknown: with learning
	// off the bridge gets a static entry for it; Open vSwitch records it
	// in the port's external-ids (attached-mac).
	GuestMAC string
	// VMName names the guest in an Open vSwitch port's external-ids
	// (vm-name); "" when unknown.
	VMName string
	// OVS reaches Open vSwitch; nil for Linux bridges only. It is how
	// to ask, not a setting, and the same for every port of a host.
	OVS *bridge.OVS
}
