package link

import (
	"sort"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// NamesOfKind returns the names of the interfaces whose link kind is kind
// ("bridge", "openvswitch"), sorted. It dumps every link, so it is for
// error messages, not for the path of a helper that works.
//
// Equivalent to: ip -br link show type $kind
func (c *Conn) NamesOfKind(kind string) ([]string, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
	var names []string
	err := c.dump(req, unix.RTM_NEWLINK, func() { names = nil }, func(b []byte) error {
		l, err := parseLink(b)
		if err == nil && l.Kind == kind {
			names = append(names, l.Name)
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}
