package link

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A Link is what a lookup reads of an interface: the few attributes the
// helpers act on, not all the kernel reports.
type Link struct {
	// Index is the interface index (ifi_index).
	Index int
	// Name is the interface name (IFLA_IFNAME).
	Name string
	// Kind is the driver's link kind (IFLA_INFO_KIND): "tun" for a tap or
	// a tun, "bridge", "openvswitch", "veth"..., "" for a physical NIC.
	Kind string
	// MTU is the interface MTU (IFLA_MTU).
	MTU int
	// MAC is the hardware address (IFLA_ADDRESS); nil when it has none
	// or it is all zeros (lo).
	MAC net.HardwareAddr
	// Flags are ifi_flags: IFF_UP and IFF_PROMISC as a user set them
	// (not the promiscuity a bridge adds to its ports by itself), and
	// the kernel's own such as IFF_LOWER_UP.
	Flags uint32
	// MasterIndex is the index of the interface's master (a bridge), 0
	// when it has none (IFLA_MASTER).
	MasterIndex int
	// Alias is the interface's alias (IFLA_IFALIAS), "" for none.
	Alias string
	// Tun holds a tun device's settings; nil unless Kind is "tun".
	Tun *Tun
	// BridgePort holds the port flags of a port of a Linux bridge; nil
	// unless the interface is one (IFLA_INFO_SLAVE_KIND "bridge").
	BridgePort *BridgePort
}

// Up reports whether the interface was set up (IFF_UP).
func (l *Link) Up() bool { return l.Flags&unix.IFF_UP != 0 }

// Promisc reports whether promiscuous mode was set on the interface
// (IFF_PROMISC as a user set it).
func (l *Link) Promisc() bool { return l.Flags&unix.IFF_PROMISC != 0 }

// Type names the interface's type in messages, as ip -d link and
// vishvananda/netlink call it: its link kind, "tuntap" for a tun or tap,
// "device" for a NIC without one.
func (l *Link) Type() string {
	switch l.Kind {
	case "":
		return "device"
	case "tun":
		return "tuntap"
	}
	return l.Kind
}

// A Tun is what the tun driver reports of its device (IFLA_INFO_DATA).
type Tun struct {
	// Tap is set for a tap (Ethernet frames, IFF_TAP), clear for a tun
	// (IP packets, IFF_TUN).
	Tap bool
	// Owner and Group are the user and group allowed to attach to the
	// device; -1 when none is set.
	Owner, Group int64
	// MultiQueue, Persist and VnetHdr are the device's IFF_MULTI_QUEUE,
	// persistence (TUNSETPERSIST) and IFF_VNET_HDR.
	MultiQueue, Persist, VnetHdr bool
	// Queues and DisabledQueues count a multiqueue device's queues: the
	// descriptors attached to it, and those a holder disabled
	// (TUNSETQUEUE). The kernel counts them for multiqueue devices only.
	Queues, DisabledQueues int
	// Carrier is the device's carrier (IFLA_CARRIER): the tun driver
	// turns it on when a process attaches and off when the last one
	// goes; the holder may also turn it off (TUNSETCARRIER).
	Carrier bool
}

// Held reports whether a process holds the device: some queue of a
// multiqueue device is open, or a single-queue device has its carrier,
// the only sign the kernel gives of one. A holder who turned the carrier
// off reads as none.
func (t *Tun) Held() bool {
	if t.MultiQueue {
		return t.Queues+t.DisabledQueues > 0
	}
	return t.Carrier
}

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS from
// <linux/rtnetlink.h>, for IFLA_EXT_MASK; older kernels ignore it.
const rtextFilterSkipStats = 1 << 3

// iffTap is IFLA_TUN_TYPE of a tap (IFF_TAP in <linux/if_tun.h>).
const iffTap = 0x2

// ByName looks up the interface called name.
//
// Equivalent to: ip -d link show dev $name
func (c *Conn) ByName(name string) (*Link, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return c.get(0, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
}

// ByIndex looks up the interface with the index.
//
// Equivalent to: ip -d link show (the line of that index)
func (c *Conn) ByIndex(index int) (*Link, error) {
	if index <= 0 {
		// Index 0 asks the kernel for nothing in particular (EINVAL).
		return nil, &Errno{Err: unix.ENODEV}
	}
	return c.get(index)
}

func (c *Conn) get(index int, attrs ...*nl.RtAttr) (*Link, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	ifi := nl.NewIfInfomsg(unix.AF_UNSPEC)
	ifi.Index = int32(index)
	req.AddData(ifi)
	// Without statistics the kernel fills a third of the reply (no
	// counters, no IPv6 SNMP block): less of its time and of ours.
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
	for _, a := range attrs {
		req.AddData(a)
	}
	b, err := c.roundTrip(req, unix.RTM_NEWLINK)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("netlink: no link in the kernel's answer")
	}
	return parseLink(b)
}

// SetMTU sets the interface's MTU. l is not updated: ByIndex reads the new
// state.
//
// Equivalent to: ip link set dev $link mtu $mtu
func (c *Conn) SetMTU(l *Link, mtu int) error {
	return c.set(l, 0, 0, nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
}

// SetMAC sets the interface's hardware address.
//
// Equivalent to: ip link set dev $link address $mac
func (c *Conn) SetMAC(l *Link, mac net.HardwareAddr) error {
	return c.set(l, 0, 0, nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(mac)))
}

// SetAlias sets the interface's alias; "" removes it.
//
// Equivalent to: ip link set dev $link alias $alias
func (c *Conn) SetAlias(l *Link, alias string) error {
	return c.set(l, 0, 0, nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
}

// SetMaster makes the interface a port of the bridge with index
// masterIndex, or with 0 takes it off its bridge (detaching a link that is
// on no bridge succeeds).
//
// Equivalent to: ip link set dev $link master $master (nomaster)
func (c *Conn) SetMaster(l *Link, masterIndex int) error {
	return c.set(l, 0, 0, nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(masterIndex))))
}

// SetPromisc turns promiscuous mode on or off.
//
// Equivalent to: ip link set dev $link promisc on (off)
func (c *Conn) SetPromisc(l *Link, on bool) error {
	return c.set(l, unix.IFF_PROMISC, flagIf(on, unix.IFF_PROMISC))
}

// SetUp sets the interface up or down.
//
// Equivalent to: ip link set dev $link up (down)
func (c *Conn) SetUp(l *Link, up bool) error {
	return c.set(l, unix.IFF_UP, flagIf(up, unix.IFF_UP))
}

func flagIf(on bool, f uint32) uint32 {
	if on {
		return f
	}
	return 0
}

// set sends RTM_SETLINK for l's index: the flags under change, and attrs.
func (c *Conn) set(l *Link, change, flags uint32, attrs ...*nl.RtAttr) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	ifi := nl.NewIfInfomsg(unix.AF_UNSPEC)
	ifi.Index = int32(l.Index)
	ifi.Change = change
	ifi.Flags = flags
	req.AddData(ifi)
	for _, a := range attrs {
		req.AddData(a)
	}
	_, err := c.roundTrip(req, 0)
	return err
}

// parseLink reads an RTM_NEWLINK payload: an ifinfomsg and attributes.
func parseLink(b []byte) (*Link, error) {
	if len(b) < unix.SizeofIfInfomsg {
		return nil, errors.New("netlink: truncated link message")
	}
	ifi := nl.DeserializeIfInfomsg(b)
	l := &Link{Index: int(ifi.Index), Flags: ifi.Flags}
	attrs, err := parseAttrs(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil, errors.New("netlink: malformed link attributes")
	}
	var data []byte // IFLA_INFO_DATA, read once the kind is known
	var carrier bool
	var portKind string
	var portData []byte // IFLA_INFO_SLAVE_DATA, numbered per master kind
	for _, a := range attrs {
		v := a.Value
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			l.Name = cString(v)
		case unix.IFLA_MTU:
			if len(v) >= 4 {
				l.MTU = int(binary.NativeEndian.Uint32(v))
			}
		case unix.IFLA_ADDRESS:
			// An all-zero address (lo) is no address, as netlink reads it.
			if slices.ContainsFunc(v, func(b byte) bool { return b != 0 }) {
				l.MAC = net.HardwareAddr(append([]byte(nil), v...))
			}
		case unix.IFLA_MASTER:
			if len(v) >= 4 {
				l.MasterIndex = int(binary.NativeEndian.Uint32(v))
			}
		case unix.IFLA_IFALIAS:
			l.Alias = cString(v)
		case unix.IFLA_CARRIER:
			carrier = len(v) > 0 && v[0] != 0
		case unix.IFLA_LINKINFO:
			info, err := parseAttrs(v)
			if err != nil {
				return nil, errors.New("netlink: malformed link info")
			}
			for _, i := range info {
				switch i.Attr.Type {
				case unix.IFLA_INFO_KIND:
					l.Kind = cString(i.Value)
				case unix.IFLA_INFO_DATA:
					data = i.Value
				case unix.IFLA_INFO_SLAVE_KIND:
					portKind = cString(i.Value)
				case unix.IFLA_INFO_SLAVE_DATA:
					portData = i.Value
				}
			}
		}
	}
	// IFLA_INFO_DATA is numbered per kind: only the tun driver's is read.
	if l.Kind == "tun" {
		t, err := parseTun(data)
		if err != nil {
			return nil, err
		}
		t.Carrier = carrier
		l.Tun = t
	}
	if portKind == "bridge" {
		p, err := parseBridgePort(portData)
		if err != nil {
			return nil, err
		}
		l.BridgePort = p
	}
	return l, nil
}

// parseTun reads the tun driver's IFLA_INFO_DATA (tun_fill_info).
func parseTun(b []byte) (*Tun, error) {
	t := &Tun{Owner: -1, Group: -1}
	attrs, err := parseAttrs(b)
	if err != nil {
		return nil, errors.New("netlink: malformed tun attributes")
	}
	for _, a := range attrs {
		v := a.Value
		if len(v) == 0 {
			continue
		}
		switch a.Attr.Type {
		case nl.IFLA_TUN_TYPE:
			t.Tap = v[0] == iffTap
		case nl.IFLA_TUN_OWNER:
			if len(v) >= 4 {
				t.Owner = int64(binary.NativeEndian.Uint32(v))
			}
		case nl.IFLA_TUN_GROUP:
			if len(v) >= 4 {
				t.Group = int64(binary.NativeEndian.Uint32(v))
			}
		case nl.IFLA_TUN_MULTI_QUEUE:
			t.MultiQueue = v[0] != 0
		case nl.IFLA_TUN_PERSIST:
			t.Persist = v[0] != 0
		case nl.IFLA_TUN_VNET_HDR:
			t.VnetHdr = v[0] != 0
		case nl.IFLA_TUN_NUM_QUEUES:
			if len(v) >= 4 {
				t.Queues = int(binary.NativeEndian.Uint32(v))
			}
		case nl.IFLA_TUN_NUM_DISABLED_QUEUES:
			if len(v) >= 4 {
				t.DisabledQueues = int(binary.NativeEndian.Uint32(v))
			}
		}
	}
	return t, nil
}

// parseAttrs splits attributes with nl, after checking the length is
// aligned as the kernel pads it (nl would run past a short last one).
func parseAttrs(b []byte) ([]syscall.NetlinkRouteAttr, error) {
	if len(b)%unix.RTA_ALIGNTO != 0 {
		return nil, unix.EINVAL
	}
	return nl.ParseRouteAttr(b)
}

// cString is a NUL-terminated attribute as a string.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
