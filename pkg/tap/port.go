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
	// libvirt and qemu-bridge-helper do: a kernel bridge without a MAC of its
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
// MTU (or MTU), a high MAC, promiscuous and up, with the settings its
// bridge's kind carries.
type Port struct {
	Bridge string
	// MTU is the tap's MTU; 0 means the bridge's, so that adding the
	// port never lowers the bridge's MTU.
	MTU     int
	MAC     MACPolicy
	Promisc bool
	// AllowMove lets ifup take a tap that is a port of another bridge.
	AllowMove bool
	// PortSettings are the settings that depend on the bridge's kind
	// (VLANs, flags, the guest's MAC and name); a kind refuses those it
	// cannot carry.
	bridge.PortSettings
	// Bridges is how to reach the host's bridges. It is how to ask, not
	// a setting, and the same for every port of a host.
	Bridges bridge.Host
}
