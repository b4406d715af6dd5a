package link

import (
	"encoding/binary"
	"sort"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// DefaultRouteLinks returns the indexes of the interfaces the default
// routes of the main table go out of: IPv4 ones first, then IPv6, each by
// metric (lowest first), every nexthop of a multipath route. Empty when
// there is no default route.
//
// Equivalent to: ip route show default; ip -6 route show default
func (c *Conn) DefaultRouteLinks() ([]int, error) {
	var out []int
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		routes, err := c.defaultRoutes(family)
		if err != nil {
			return nil, err
		}
		sort.SliceStable(routes, func(i, j int) bool { return routes[i].metric < routes[j].metric })
		for _, r := range routes {
			out = append(out, r.links...)
		}
	}
	return out, nil
}

type defaultRoute struct {
	metric uint32
	links  []int
}

// defaultRoutes dumps the routes of one family and keeps the default ones.
func (c *Conn) defaultRoutes(family uint8) ([]defaultRoute, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETROUTE, unix.NLM_F_DUMP)
	req.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{Family: family}})
	var routes []defaultRoute
	err := c.dump(req, unix.RTM_NEWROUTE, func() { routes = nil }, func(b []byte) error {
		if r, ok := parseDefaultRoute(b); ok {
			routes = append(routes, r)
		}
		return nil
	})
	return routes, err
}

// parseDefaultRoute reads an RTM_NEWROUTE payload; ok only for a unicast
// default route (destination length 0) of the main table.
func parseDefaultRoute(b []byte) (r defaultRoute, ok bool) {
	if len(b) < unix.SizeofRtMsg {
		return r, false
	}
	dstLen, table, typ := b[1], uint32(b[4]), b[7]
	if dstLen != 0 || typ != unix.RTN_UNICAST {
		return r, false
	}
	attrs, err := parseAttrs(b[unix.SizeofRtMsg:])
	if err != nil {
		return r, false
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_TABLE:
			if len(a.Value) >= 4 {
				table = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.RTA_PRIORITY:
			if len(a.Value) >= 4 {
				r.metric = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.RTA_OIF:
			if len(a.Value) >= 4 {
				r.links = append(r.links, int(binary.NativeEndian.Uint32(a.Value)))
			}
		case unix.RTA_MULTIPATH:
			// struct rtnexthop { u16 len; u8 flags; u8 hops; s32 ifindex; } + attributes
			for v := a.Value; len(v) >= unix.SizeofRtNexthop; {
				n := int(binary.NativeEndian.Uint16(v[0:2]))
				if n < unix.SizeofRtNexthop || n > len(v) {
					break
				}
				r.links = append(r.links, int(int32(binary.NativeEndian.Uint32(v[4:8]))))
				v = v[min(rtaAlign(n), len(v)):]
			}
		}
	}
	return r, table == unix.RT_TABLE_MAIN && len(r.links) > 0
}

func rtaAlign(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }
