// Package bridge owns the bridge side of a port: it finds a bridge by
// name, tells which bridge a port is on, and plans the steps that attach a
// port, configure it and detach it.
//
// A Bridge is one bridge of one kind. Each kind is one file and one type
// implementing Bridge:
//
//   - Linux (linux.go): the kernel's bridge, over netlink. Its ports have
//     flags (isolated, learning, unicast flooding) and, for a guest whose
//     MAC the bridge is not to learn, a static forwarding entry; rules
//     against spoofing in nftables (guard.go) and limits each way, token
//     bucket filters on the port and on an ifb device of its own
//     (shape.go, shapeout.go).
//   - OVSBridge (ovsbridge.go): a bridge of Open vSwitch, through
//     ovs-vsctl (see OVS). Its ports have VLANs, an mtu_request and
//     external-ids naming the guest; a port may be an OVN logical port
//     (ovn.go), an identity of the OVS kind.
//
// Each kind answers the two lookups for its own bridges ("which bridge is
// this name", "which bridge is this port on", asked through Host), checks
// the port settings it can carry (Check), and gives the steps that make a
// port one of its own (Join) or take it off (Leave). A Step carries its
// own apply, undo, read-back and description, so the caller (package tap)
// orders steps and undoes them without knowing which kind made them.
//
// Adding a kind means adding one file: a type implementing Bridge, and a
// kind (its two lookups) that Host.kinds lists. An Open vSwitch port with
// an identity to wait for belongs to the OVS kind. An OVN logical port
// (PortSettings.LogicalPort) is one: its identity goes in the external-ids
// of the OVS kind's attach, its MTU follows the chassis' tunnels
// (PortMTU), and on an OVN chassis a last step (ActWait) waits until
// ovn-controller has installed it, or says why not.
package bridge
