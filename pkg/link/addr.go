package link

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ByAddr returns the interface that holds the address ip (a tunnel's
// local endpoint, say); an address no interface holds is an error
// wrapping ErrNotFound.
//
// Equivalent to: ip -o addr show to $ip
func (c *Conn) ByAddr(ip net.IP) (*Link, error) {
	family, want := uint8(unix.AF_INET6), ip.To16()
	if v4 := ip.To4(); v4 != nil {
		family, want = unix.AF_INET, v4
	}
	if want == nil {
		return nil, fmt.Errorf("%q is not an IP address", ip)
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(int(family)))
	index := 0
	err := c.dump(req, unix.RTM_NEWADDR, func() { index = 0 }, func(b []byte) error {
		if i, ok := addrIndex(b, want); ok && index == 0 {
			index = i
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	if index == 0 {
		return nil, fmt.Errorf("no interface has address %s: %w", ip, ErrNotFound)
	}
	return c.ByIndex(index)
}

// addrIndex reads an RTM_NEWADDR payload and returns its interface's
// index when the address (IFA_LOCAL, else IFA_ADDRESS) is ip.
func addrIndex(b []byte, ip net.IP) (int, bool) {
	if len(b) < unix.SizeofIfAddrmsg {
		return 0, false
	}
	index := int(nl.DeserializeIfAddrmsg(b).Index)
	attrs, err := parseAttrs(b[unix.SizeofIfAddrmsg:])
	if err != nil {
		return 0, false
	}
	var local, addr net.IP
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_LOCAL:
			local = net.IP(a.Value)
		case unix.IFA_ADDRESS:
			addr = net.IP(a.Value)
		}
	}
	if local == nil {
		local = addr
	}
	return index, local.Equal(ip)
}
