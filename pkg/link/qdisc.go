package link

import (
	"encoding/binary"
	"errors"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A TBF is a token bucket filter (tc's tbf qdisc): what leaves the
// interface is shaped to Rate, with Burst bytes at a time, and up to
// Limit bytes wait their turn.
type TBF struct {
	Rate  uint64 // bytes per second
	Burst uint32 // bytes
	Limit uint32 // bytes
}

// tbfHandle is the handle of the root qdisc SetRootTBF adds (tc's 1:).
const tbfHandle = 1 << 16

// RootTBF returns the token bucket filter that is the root qdisc of l,
// or nil when its root qdisc is another (the kernel's default one).
//
// Equivalent to: tc qdisc show dev $link root
func (c *Conn) RootTBF(l *Link) (*TBF, error) {
	// A dump: the kernel answers a plain request about a qdisc of its
	// own (noop, noqueue) with nothing at all.
	req := nl.NewNetlinkRequest(unix.RTM_GETQDISC, unix.NLM_F_DUMP)
	req.AddData(&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: int32(l.Index)})
	var b []byte
	err := c.dump(req, unix.RTM_NEWQDISC, func() { b = nil }, func(m []byte) error {
		if len(m) < nl.SizeofTcMsg {
			return errors.New("netlink: truncated qdisc message")
		}
		tm := nl.DeserializeTcMsg(m)
		if int(tm.Ifindex) == l.Index && tm.Parent == netlink.HANDLE_ROOT {
			b = append([]byte(nil), m...)
		}
		return nil
	})
	if err != nil || b == nil {
		return nil, err
	}
	attrs, err := parseAttrs(b[nl.SizeofTcMsg:])
	if err != nil {
		return nil, err
	}
	kind, opts := "", []byte(nil)
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.TCA_KIND:
			kind = cString(a.Value)
		case unix.TCA_OPTIONS:
			opts = a.Value
		}
	}
	if kind != "tbf" {
		return nil, nil
	}
	nested, err := parseAttrs(opts)
	if err != nil {
		return nil, err
	}
	var t TBF
	var buffer uint32
	for _, a := range nested {
		switch a.Attr.Type {
		case nl.TCA_TBF_PARMS:
			if len(a.Value) < nl.SizeofTcTbfQopt {
				return nil, errors.New("netlink: truncated tbf parameters")
			}
			q := nl.DeserializeTcTbfQopt(a.Value)
			t.Rate, t.Limit, buffer = uint64(q.Rate.Rate), q.Limit, q.Buffer
		case nl.TCA_TBF_RATE64:
			if len(a.Value) >= 8 {
				t.Rate = binary.NativeEndian.Uint64(a.Value)
			}
		}
	}
	t.Burst = netlink.Xmitsize(t.Rate, buffer)
	return &t, nil
}

// SetRootTBF makes t the root qdisc of l, in place of any other.
//
// Equivalent to: tc qdisc replace dev $link root handle 1: tbf rate
// ${rate} burst $burst limit $limit
func (c *Conn) SetRootTBF(l *Link, t TBF) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	req.AddData(&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: int32(l.Index), Handle: tbfHandle, Parent: netlink.HANDLE_ROOT})
	req.AddData(nl.NewRtAttr(unix.TCA_KIND, nl.ZeroTerminated("tbf")))
	q := nl.TcTbfQopt{Limit: t.Limit, Buffer: netlink.Xmittime(t.Rate, t.Burst)}
	q.Rate.Rate = uint32(min(t.Rate, 1<<32-1))
	q.Rate.Linklayer = nl.LINKLAYER_ETHERNET
	opts := nl.NewRtAttr(unix.TCA_OPTIONS, nil)
	opts.AddRtAttr(nl.TCA_TBF_PARMS, q.Serialize())
	opts.AddRtAttr(nl.TCA_TBF_RATE64, nl.Uint64Attr(t.Rate))
	// The burst in bytes: the kernel works out the bucket's time itself.
	opts.AddRtAttr(nl.TCA_TBF_BURST, nl.Uint32Attr(t.Burst))
	req.AddData(opts)
	_, err := c.roundTrip(req, 0)
	return err
}

// DelRootQdisc removes l's root qdisc, which the kernel's default one
// replaces; an interface without a qdisc of its own is left as it is.
//
// Equivalent to: tc qdisc del dev $link root
func (c *Conn) DelRootQdisc(l *Link) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELQDISC, unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: int32(l.Index), Parent: netlink.HANDLE_ROOT})
	_, err := c.roundTrip(req, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
