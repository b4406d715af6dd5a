package link

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ifinfo builds an RTM_NEWLINK payload as the kernel sends it.
func ifinfo(index int32, flags uint32, attrs ...*nl.RtAttr) []byte {
	m := nl.NewIfInfomsg(unix.AF_UNSPEC)
	m.Index = index
	m.Flags = flags
	b := append([]byte(nil), m.Serialize()...)
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func u32(v uint32) []byte { return nl.Uint32Attr(v) }

// linkinfo is IFLA_LINKINFO with a kind and, when given, IFLA_INFO_DATA.
func linkinfo(kind string, data ...*nl.RtAttr) *nl.RtAttr {
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(unix.IFLA_INFO_KIND, nl.ZeroTerminated(kind))
	if len(data) > 0 {
		d := info.AddRtAttr(unix.IFLA_INFO_DATA, nil)
		for _, a := range data {
			d.AddChild(a)
		}
	}
	return info
}

func TestParseLink(t *testing.T) {
	mac := net.HardwareAddr{0xfe, 0x54, 0, 0x12, 0x34, 0x56}
	name := func(s string) *nl.RtAttr { return nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(s)) }
	tests := []struct {
		name string
		msg  []byte
		want *Link
		err  bool
	}{
		{
			name: "tap with owner, group, persist and vnet_hdr",
			msg: ifinfo(7, unix.IFF_UP|unix.IFF_PROMISC|unix.IFF_BROADCAST,
				name("tap0"),
				nl.NewRtAttr(unix.IFLA_MTU, u32(1400)),
				nl.NewRtAttr(unix.IFLA_ADDRESS, mac),
				nl.NewRtAttr(unix.IFLA_MASTER, u32(3)),
				nl.NewRtAttr(unix.IFLA_CARRIER, []byte{1}),
				linkinfo("tun",
					nl.NewRtAttr(nl.IFLA_TUN_OWNER, u32(1000)),
					nl.NewRtAttr(nl.IFLA_TUN_GROUP, u32(1001)),
					nl.NewRtAttr(nl.IFLA_TUN_TYPE, []byte{iffTap}),
					nl.NewRtAttr(nl.IFLA_TUN_PI, []byte{0}),
					nl.NewRtAttr(nl.IFLA_TUN_VNET_HDR, []byte{1}),
					nl.NewRtAttr(nl.IFLA_TUN_PERSIST, []byte{1}),
					nl.NewRtAttr(nl.IFLA_TUN_MULTI_QUEUE, []byte{0}),
					nl.NewRtAttr(nl.IFLA_TUN_NUM_QUEUES, u32(1)),
				)),
			want: &Link{Index: 7, Name: "tap0", Kind: "tun", MTU: 1400, MAC: mac,
				Flags: unix.IFF_UP | unix.IFF_PROMISC | unix.IFF_BROADCAST, MasterIndex: 3,
				Tun: &Tun{Tap: true, Owner: 1000, Group: 1001, Persist: true, VnetHdr: true, Queues: 1, Carrier: true}},
		},
		{
			name: "tun without owner or group, multi-queue",
			msg: ifinfo(8, 0, name("tun0"), linkinfo("tun",
				nl.NewRtAttr(nl.IFLA_TUN_TYPE, []byte{0x1}),
				nl.NewRtAttr(nl.IFLA_TUN_MULTI_QUEUE, []byte{1}),
				nl.NewRtAttr(nl.IFLA_TUN_PERSIST, []byte{0}),
				nl.NewRtAttr(nl.IFLA_TUN_NUM_QUEUES, u32(2)),
				nl.NewRtAttr(nl.IFLA_TUN_NUM_DISABLED_QUEUES, u32(1)),
			), nl.NewRtAttr(unix.IFLA_IFALIAS, nl.ZeroTerminated("vm1 net0"))),
			want: &Link{Index: 8, Name: "tun0", Kind: "tun", Alias: "vm1 net0",
				Tun: &Tun{Owner: -1, Group: -1, MultiQueue: true, Queues: 2, DisabledQueues: 1}},
		},
		{
			name: "tun without INFO_DATA",
			msg:  ifinfo(8, 0, name("tun0"), linkinfo("tun")),
			want: &Link{Index: 8, Name: "tun0", Kind: "tun", Tun: &Tun{Owner: -1, Group: -1}},
		},
		{
			// A bridge's INFO_DATA numbers its own attributes: 1 is
			// IFLA_BR_FORWARD_DELAY, not a tun owner.
			name: "bridge data is not read as a tun's",
			msg: ifinfo(3, unix.IFF_UP, name("virbr0"), linkinfo("bridge",
				nl.NewRtAttr(nl.IFLA_BR_FORWARD_DELAY, u32(1500)),
				nl.NewRtAttr(nl.IFLA_BR_MAX_AGE, u32(2000)),
			)),
			want: &Link{Index: 3, Name: "virbr0", Kind: "bridge", Flags: unix.IFF_UP},
		},
		{
			name: "NIC without link info",
			msg:  ifinfo(2, unix.IFF_UP, name("eth0"), nl.NewRtAttr(unix.IFLA_MTU, u32(9000)), nl.NewRtAttr(unix.IFLA_ADDRESS, mac)),
			want: &Link{Index: 2, Name: "eth0", MTU: 9000, MAC: mac, Flags: unix.IFF_UP},
		},
		{
			name: "all-zero address is none",
			msg:  ifinfo(1, 0, name("lo"), nl.NewRtAttr(unix.IFLA_ADDRESS, make([]byte, 6))),
			want: &Link{Index: 1, Name: "lo"},
		},
		{
			name: "unknown attributes are skipped",
			msg:  ifinfo(4, 0, nl.NewRtAttr(0x7ff, []byte{1, 2, 3, 4}), name("x")),
			want: &Link{Index: 4, Name: "x"},
		},
		{name: "short ifinfomsg", msg: make([]byte, unix.SizeofIfInfomsg-1), err: true},
		{name: "attribute longer than the message", msg: append(ifinfo(1, 0), 0xff, 0, 3, 0), err: true},
		{name: "unaligned attributes", msg: append(ifinfo(1, 0), 5, 0, 3, 0, 'x'), err: true},
		{
			name: "malformed tun data",
			msg: func() []byte {
				info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
				info.AddRtAttr(unix.IFLA_INFO_KIND, nl.ZeroTerminated("tun"))
				info.AddRtAttr(unix.IFLA_INFO_DATA, []byte{0xff, 0, 1, 0})
				return ifinfo(1, 0, info)
			}(),
			err: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLink(tt.msg)
			if tt.err {
				if err == nil {
					t.Fatalf("parseLink = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLink: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseLink (-want +got):\n%s", diff)
			}
		})
	}
}

// nlmsg builds one netlink message with its padding.
func nlmsg(typ, flags uint16, seq uint32, data []byte) []byte {
	b := make([]byte, nlmAlign(unix.SizeofNlMsghdr+len(data)))
	binary.NativeEndian.PutUint32(b[0:4], uint32(unix.SizeofNlMsghdr+len(data)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	copy(b[unix.SizeofNlMsghdr:], data)
	return b
}

// errmsg is an NLMSG_ERROR carrying -errno (0: an acknowledgement).
func errmsg(seq uint32, errno unix.Errno) []byte {
	d := make([]byte, 4+unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(d, uint32(-int32(errno)))
	return nlmsg(unix.NLMSG_ERROR, 0, seq, d)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestScan(t *testing.T) {
	const seq = 5
	reply := []byte("link")
	tests := []struct {
		name     string
		b        []byte
		want     uint16
		payloads []string // what fn was called with
		done     bool
		intr     bool
		errno    unix.Errno // 0: no Errno
		err      bool       // any error
	}{
		{name: "reply", b: nlmsg(unix.RTM_NEWLINK, 0, seq, reply), want: unix.RTM_NEWLINK, payloads: []string{"link"}, done: true},
		{name: "acknowledgement", b: errmsg(seq, 0), done: true},
		{name: "acknowledgement still to come", b: nlmsg(unix.NLMSG_NOOP, 0, seq, nil)},
		{name: "error", b: errmsg(seq, unix.ENODEV), want: unix.RTM_NEWLINK, done: true, errno: unix.ENODEV, err: true},
		{
			name: "stale answers of an earlier request are skipped",
			b:    cat(errmsg(seq-1, unix.EINVAL), nlmsg(unix.RTM_NEWLINK, 0, seq-1, []byte("old!")), nlmsg(unix.RTM_NEWLINK, 0, seq, reply)),
			want: unix.RTM_NEWLINK, payloads: []string{"link"}, done: true,
		},
		{
			name: "stale answers only: keep reading",
			b:    cat(errmsg(seq-1, 0), nlmsg(unix.RTM_NEWLINK, 0, seq-1, []byte("old!"))),
			want: unix.RTM_NEWLINK,
		},
		{
			name: "reply then acknowledgement",
			b:    cat(nlmsg(unix.RTM_NEWLINK, 0, seq, reply), errmsg(seq, 0)),
			want: unix.RTM_NEWLINK, payloads: []string{"link"}, done: true,
		},
		{
			name: "first part of a multi-part reply",
			b:    nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, seq, reply),
			want: unix.RTM_NEWLINK, payloads: []string{"link"},
		},
		{
			name: "multi-part reply to its end",
			b:    cat(nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, seq, reply), nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, seq, []byte("more")), nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, seq, make([]byte, 4))),
			want: unix.RTM_NEWLINK, payloads: []string{"link", "more"}, done: true,
		},
		{
			name: "interrupted dump",
			b:    cat(nlmsg(unix.RTM_NEWROUTE, unix.NLM_F_MULTI, seq, reply), nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, seq, make([]byte, 4))),
			want: unix.RTM_NEWROUTE, payloads: []string{"link"}, done: true, intr: true,
		},
		{name: "end of a multi-part reply", b: nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, seq, make([]byte, 4)), want: unix.RTM_NEWLINK, done: true},
		{name: "unexpected message type is skipped", b: nlmsg(unix.RTM_NEWADDR, 0, seq, reply), want: unix.RTM_NEWLINK},
		{name: "overrun", b: nlmsg(unix.NLMSG_OVERRUN, 0, seq, nil), done: true, errno: unix.ENOBUFS, err: true},
		{name: "truncated header", b: nlmsg(unix.RTM_NEWLINK, 0, seq, reply)[:unix.SizeofNlMsghdr-1], want: unix.RTM_NEWLINK, done: true, err: true},
		{
			name: "length past the datagram",
			b:    nlmsg(unix.RTM_NEWLINK, 0, seq, reply)[:unix.SizeofNlMsghdr+2],
			want: unix.RTM_NEWLINK, done: true, err: true,
		},
		{
			name: "length shorter than a header",
			b:    func() []byte { b := nlmsg(unix.RTM_NEWLINK, 0, seq, reply); b[0] = 4; return b }(),
			want: unix.RTM_NEWLINK, done: true, err: true,
		},
		{name: "truncated error", b: nlmsg(unix.NLMSG_ERROR, 0, seq, []byte{1, 2}), done: true, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			done, intr, err := scan(tt.b, seq, tt.want, func(b []byte) error {
				got = append(got, string(b))
				return nil
			})
			if (err != nil) != tt.err {
				t.Fatalf("scan error = %v, want error %v", err, tt.err)
			}
			if tt.errno != 0 && !errors.Is(err, tt.errno) {
				t.Errorf("scan error = %v, want %v", err, tt.errno)
			}
			if done != tt.done || intr != tt.intr {
				t.Errorf("scan done, intr = %v, %v; want %v, %v", done, intr, tt.done, tt.intr)
			}
			if diff := cmp.Diff(tt.payloads, got); diff != "" {
				t.Errorf("scan payloads (-want +got):\n%s", diff)
			}
		})
	}
}

// fn's error stops the scan and is returned.
func TestScanStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	b := cat(nlmsg(unix.RTM_NEWROUTE, unix.NLM_F_MULTI, 1, []byte("a")), nlmsg(unix.RTM_NEWROUTE, unix.NLM_F_MULTI, 1, []byte("b")))
	done, _, err := scan(b, 1, unix.RTM_NEWROUTE, func([]byte) error { calls++; return stop })
	if !done || !errors.Is(err, stop) || calls != 1 {
		t.Errorf("scan = done %v, %v after %d calls; want done, stop after 1", done, err, calls)
	}
}

func TestErrno(t *testing.T) {
	tests := []struct {
		errno    unix.Errno
		notFound bool
	}{
		{unix.ENODEV, true},
		{unix.EINVAL, false},
		{unix.EPERM, false},
	}
	for _, tt := range tests {
		err := error(&Errno{Err: tt.errno})
		if !errors.Is(err, tt.errno) {
			t.Errorf("errors.Is(%v, %v) = false", err, tt.errno)
		}
		if got := errors.Is(err, ErrNotFound); got != tt.notFound {
			t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
		}
		if err.Error() != tt.errno.Error() {
			t.Errorf("Error() = %q, want the errno's %q", err, tt.errno.Error())
		}
	}
}

// TestParseBridgePort reads a port's IFLA_INFO_SLAVE_DATA; a flag the kernel
// leaves out (an old kernel without isolation) reads as off.
func TestParseBridgePort(t *testing.T) {
	port := func(kind string, flags ...*nl.RtAttr) []byte {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(unix.IFLA_INFO_KIND, nl.ZeroTerminated("veth"))
		info.AddRtAttr(unix.IFLA_INFO_SLAVE_KIND, nl.ZeroTerminated(kind))
		d := info.AddRtAttr(unix.IFLA_INFO_SLAVE_DATA, nil)
		for _, f := range flags {
			d.AddChild(f)
		}
		return ifinfo(4, 0, info)
	}
	flag := func(attr int, on byte) *nl.RtAttr { return nl.NewRtAttr(attr, []byte{on}) }
	tests := []struct {
		name string
		msg  []byte
		want *BridgePort
	}{
		{"all three on", port("bridge", flag(nl.IFLA_BRPORT_ISOLATED, 1), flag(nl.IFLA_BRPORT_LEARNING, 1), flag(nl.IFLA_BRPORT_UNICAST_FLOOD, 1)),
			&BridgePort{Isolated: true, Learning: true, UnicastFlood: true}},
		{"learning off, no isolated attribute", port("bridge", flag(nl.IFLA_BRPORT_LEARNING, 0), flag(nl.IFLA_BRPORT_UNICAST_FLOOD, 1)),
			&BridgePort{UnicastFlood: true}},
		{"a bond's port is no bridge port", port("bond", flag(nl.IFLA_BRPORT_ISOLATED, 1)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseLink(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, l.BridgePort); diff != "" {
				t.Errorf("BridgePort (-want +got):\n%s", diff)
			}
		})
	}
}
