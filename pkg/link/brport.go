package link

import (
	"encoding/binary"
	"errors"
	"net"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A BridgePort is what a Linux bridge reports of one of its ports
// (IFLA_INFO_SLAVE_DATA): the port flags the helpers set.
type BridgePort struct {
	// Isolated ports forward only to ports that are not isolated
	// (IFLA_BRPORT_ISOLATED).
	Isolated bool
	// Learning: the bridge learns source MACs seen on the port
	// (IFLA_BRPORT_LEARNING).
	Learning bool
	// UnicastFlood: unicast frames to unknown MACs are flooded to the
	// port (IFLA_BRPORT_UNICAST_FLOOD).
	UnicastFlood bool
}

// parseBridgePort reads the bridge's IFLA_INFO_SLAVE_DATA
// (br_port_fill_slave_info). A flag the kernel does not report stays false:
// a kernel too old to know a flag never reports it set.
func parseBridgePort(b []byte) (*BridgePort, error) {
	attrs, err := parseAttrs(b)
	if err != nil {
		return nil, errors.New("netlink: malformed bridge port attributes")
	}
	p := &BridgePort{}
	for _, a := range attrs {
		if len(a.Value) == 0 {
			continue
		}
		on := a.Value[0] != 0
		switch a.Attr.Type {
		case nl.IFLA_BRPORT_ISOLATED:
			p.Isolated = on
		case nl.IFLA_BRPORT_LEARNING:
			p.Learning = on
		case nl.IFLA_BRPORT_UNICAST_FLOOD:
			p.UnicastFlood = on
		}
	}
	return p, nil
}

// SetIsolated sets the bridge port flag isolated. The kernel accepts flags
// it does not know without complaint on some versions: read the port back
// (ByIndex) to be sure.
//
// Equivalent to: bridge link set dev $link isolated on (off)
func (c *Conn) SetIsolated(l *Link, on bool) error {
	return c.setBridgePort(l, nl.IFLA_BRPORT_ISOLATED, on)
}

// SetLearning sets the bridge port flag learning.
//
// Equivalent to: bridge link set dev $link learning on (off)
func (c *Conn) SetLearning(l *Link, on bool) error {
	return c.setBridgePort(l, nl.IFLA_BRPORT_LEARNING, on)
}

// SetUnicastFlood sets the bridge port flag flood (unicast flooding).
//
// Equivalent to: bridge link set dev $link flood on (off)
func (c *Conn) SetUnicastFlood(l *Link, on bool) error {
	return c.setBridgePort(l, nl.IFLA_BRPORT_UNICAST_FLOOD, on)
}

// setBridgePort sends what "bridge link set" sends: RTM_SETLINK of family
// AF_BRIDGE with the flag in a nested IFLA_PROTINFO, which the bridge
// driver handles for its ports (br_setlink).
func (c *Conn) setBridgePort(l *Link, attr int, on bool) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	ifi := nl.NewIfInfomsg(unix.AF_BRIDGE)
	ifi.Index = int32(l.Index)
	req.AddData(ifi)
	pi := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	v := byte(0)
	if on {
		v = 1
	}
	pi.AddRtAttr(attr, []byte{v})
	req.AddData(pi)
	_, err := c.roundTrip(req, 0)
	return err
}

// ndmsg is struct ndmsg of <linux/neighbour.h>.
type ndmsg struct {
	family  uint8
	ifindex int32
	state   uint16
	flags   uint8
}

func (m *ndmsg) Len() int { return 12 }

func (m *ndmsg) Serialize() []byte {
	b := make([]byte, 12)
	b[0] = m.family
	binary.NativeEndian.PutUint32(b[4:8], uint32(m.ifindex))
	binary.NativeEndian.PutUint16(b[8:10], m.state)
	b[10] = m.flags
	return b
}

// fdbRequest is an RTM_*NEIGH request about mac on the bridge port l, asked
// of the port's master (NTF_MASTER), as the bridge command asks it.
func fdbRequest(typ int, flags int, l *Link, mac net.HardwareAddr, state uint16) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags)
	req.AddData(&ndmsg{family: unix.AF_BRIDGE, ifindex: int32(l.Index), state: state, flags: unix.NTF_MASTER})
	req.AddData(nl.NewRtAttr(unix.NDA_LLADDR, []byte(mac)))
	return req
}

// AddStaticFDB adds a static forwarding entry for mac on the bridge port l
// (the bridge then sends frames for mac to l without learning it),
// replacing any entry the bridge had for mac.
//
// Equivalent to: bridge fdb replace $mac dev $link master static
func (c *Conn) AddStaticFDB(l *Link, mac net.HardwareAddr) error {
	req := fdbRequest(unix.RTM_NEWNEIGH, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, l, mac, unix.NUD_NOARP)
	_, err := c.roundTrip(req, 0)
	return err
}

// DelFDB removes the forwarding entry for mac on the bridge port l; an
// entry that is not there is not an error.
//
// Equivalent to: bridge fdb del $mac dev $link master
func (c *Conn) DelFDB(l *Link, mac net.HardwareAddr) error {
	req := fdbRequest(unix.RTM_DELNEIGH, unix.NLM_F_ACK, l, mac, 0)
	_, err := c.roundTrip(req, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// StaticFDB reports whether the bridge port l has a static forwarding
// entry for mac (not one the bridge learned).
//
// Equivalent to: bridge fdb get $mac dev $link master
func (c *Conn) StaticFDB(l *Link, mac net.HardwareAddr) (bool, error) {
	req := fdbRequest(unix.RTM_GETNEIGH, 0, l, mac, 0)
	b, err := c.roundTrip(req, unix.RTM_NEWNEIGH)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(b) < 12 {
		return false, errors.New("netlink: truncated neighbour message")
	}
	state := binary.NativeEndian.Uint16(b[8:10])
	ifindex := int32(binary.NativeEndian.Uint32(b[4:8]))
	return ifindex == int32(l.Index) && state&unix.NUD_NOARP != 0, nil
}
