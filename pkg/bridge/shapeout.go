package bridge

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// The limit on the traffic from a guest is shaped, not policed. tc's
// police action is missing from some kernels, and nftables' limit keeps a
// bucket of at least one second at the rate (nft_limit's tokens_max):
// TCP through it got about 130 % of the rate over 4-second transfers.
// Instead, what the port receives is redirected to an ifb device of its
// own, whose root qdisc is a token bucket filter, and comes back into the
// bridge from there:
//
//	ip link add qthifbN type ifb; tc qdisc add dev qthifbN root tbf ...
//	tc qdisc add dev TAP ingress
//	tc filter add dev TAP parent ffff: u32 match u32 0 0 action mirred egress redirect dev qthifbN
//
// where N is the port's interface index.

// IfbPrefix begins the names of the ifb devices of limited ports.
const IfbPrefix = "qthifb"

// ifbName is the name of the ifb device of the port with index index.
func ifbName(index int) string { return IfbPrefix + strconv.Itoa(index) }

// handle opens a vishvananda/netlink handle in the namespace of c, for
// what pkg/link does not do (ifb devices, ingress filters).
func handle(c *link.Conn) (*netlink.Handle, error) {
	fd, err := c.NetNS()
	if err != nil {
		return nil, err
	}
	return netlink.NewHandleAt(netns.NsHandle(fd))
}

var ingressHandle = netlink.MakeHandle(0xffff, 0)

// outShapeSteps is the step that gives port the outbound limit out, or
// takes it away when out is none: none when all is as asked.
func outShapeSteps(c *link.Conn, port *link.Link, out Limit) ([]Step, error) {
	ifb, err := c.ByName(ifbName(port.Index))
	if err != nil && !errors.Is(err, link.ErrNotFound) {
		return nil, fmt.Errorf("look up %s: %w", ifbName(port.Index), err)
	}
	var have *link.TBF
	if ifb != nil {
		if have, err = c.RootTBF(ifb); err != nil {
			return nil, fmt.Errorf("read the qdisc of %s: %w", ifb.Name, err)
		}
	}
	if !out.Set() {
		if ifb == nil {
			return nil, nil
		}
		return []Step{{
			Action: ActShape,
			Desc:   "remove the limit on traffic from the guest",
			Apply:  delOutShape,
			Undo:   restoreOutShape(have),
		}}, nil
	}
	want := tbfOf(out)
	if have != nil && sameTBF(*have, want) {
		return nil, nil
	}
	return []Step{{
		Action: ActShape,
		Desc:   "limit traffic from the guest to " + out.String() + " (through " + ifbName(port.Index) + ")",
		Apply:  func(c *link.Conn, port *link.Link) error { return setOutShape(c, port, want) },
		Undo:   restoreOutShape(have),
	}}, nil
}

// restoreOutShape is the undo that gives back the port's filter had, or
// removes it for none.
func restoreOutShape(had *link.TBF) func(*link.Conn, *link.Link) error {
	if had == nil {
		return delOutShape
	}
	return func(c *link.Conn, port *link.Link) error { return setOutShape(c, port, *had) }
}

// setOutShape gives port an ifb device shaped by t, and redirects what
// port receives to it.
func setOutShape(c *link.Conn, port *link.Link, t link.TBF) error {
	h, err := handle(c)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	name := ifbName(port.Index)
	l, err := h.LinkByName(name)
	if err != nil {
		if err := h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: 1000}}); err != nil {
			return fmt.Errorf("add ifb device %s for %s: %w", name, port.Name, err)
		}
		if l, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("look up %s: %w", name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	if err := setTBF(c, &link.Link{Name: name, Index: l.Attrs().Index}, t); err != nil {
		return err
	}
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: port.Index, Handle: ingressHandle, Parent: netlink.HANDLE_INGRESS}}
	// The kernel refuses to replace an ingress qdisc: one that is there
	// stays.
	if err := h.QdiscAdd(ingress); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add ingress qdisc to %s: %w", port.Name, err)
	}
	redirect := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: port.Index, Parent: ingressHandle, Priority: 1, Protocol: unix.ETH_P_ALL},
		Actions:     []netlink.Action{netlink.NewMirredAction(l.Attrs().Index)},
	}
	if err := h.FilterReplace(redirect); err != nil {
		return fmt.Errorf("redirect what %s receives to %s: %w", port.Name, name, err)
	}
	return nil
}

// delOutShape removes port's ingress qdisc (with its redirect) and its
// ifb device.
func delOutShape(c *link.Conn, port *link.Link) error {
	h, err := handle(c)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: port.Index, Handle: ingressHandle, Parent: netlink.HANDLE_INGRESS}}
	if err := h.QdiscDel(ingress); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("remove the ingress qdisc of %s: %w", port.Name, err)
	}
	return delIfb(h, ifbName(port.Index))
}

// delIfb removes the ifb device called name; one that is gone is no
// error.
func delIfb(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// leaveOutShape is the step that removes port's outbound limit when it
// leaves its bridge, or nil when it has none. Unless last, its undo puts
// it back.
func leaveOutShape(c *link.Conn, port *link.Link, last bool) (*Step, error) {
	if port.Index == 0 {
		return nil, nil
	}
	ifb, err := c.ByName(ifbName(port.Index))
	if errors.Is(err, link.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", ifbName(port.Index), err)
	}
	st := &Step{Action: ActShape, Desc: "remove the limit on traffic from the guest", Apply: delOutShape}
	if !last {
		have, err := c.RootTBF(ifb)
		if err != nil {
			return nil, err
		}
		st.Undo = restoreOutShape(have)
	}
	return st, nil
}
