package link

import (
	"sort"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A Filter narrows a listing of links, as the kernel applies it: the zero
// Filter lists every link.
type Filter struct {
	// Kind keeps the links of this kind (IFLA_INFO_KIND): "tun",
	// "bridge"...
	Kind string
	// MasterIndex keeps the ports of the master with this index.
	MasterIndex int
}

// List returns the links the filter keeps. The kernel filters (it has
// since Linux 4.x; one that does not is filtered again here).
//
// Equivalent to: ip -d link show [type $kind] [master $master]
func (c *Conn) List(f Filter) ([]*Link, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
	if f.Kind != "" {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(unix.IFLA_INFO_KIND, nl.ZeroTerminated(f.Kind))
		req.AddData(info)
	}
	if f.MasterIndex != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(f.MasterIndex))))
	}
	var links []*Link
	err := c.dump(req, unix.RTM_NEWLINK, func() { links = nil }, func(b []byte) error {
		l, err := parseLink(b)
		if err != nil {
			return err
		}
		if (f.Kind == "" || l.Kind == f.Kind) && (f.MasterIndex == 0 || l.MasterIndex == f.MasterIndex) {
			links = append(links, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return links, nil
}

// Delete removes the interface. A tun device goes whoever holds it; its
// holders' descriptors then fail (EBADFD).
//
// Equivalent to: ip link delete dev $link
func (c *Conn) Delete(l *Link) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	ifi := nl.NewIfInfomsg(unix.AF_UNSPEC)
	ifi.Index = int32(l.Index)
	req.AddData(ifi)
	_, err := c.roundTrip(req, 0)
	return err
}

// NamesOfKind returns the names of the interfaces whose link kind is kind
// ("bridge", "openvswitch"), sorted. It is for error messages, not for the
// path of a helper that works.
//
// Equivalent to: ip -br link show type $kind
func (c *Conn) NamesOfKind(kind string) ([]string, error) {
	links, err := c.List(Filter{Kind: kind})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Name)
	}
	sort.Strings(names)
	return names, nil
}
