// Package link looks up network interfaces and changes the few attributes
// the helpers set (MTU, MAC, master, promiscuity, up, and a bridge port's
// isolated, learning and flood flags and static forwarding entries) over
// rtnetlink, and checks interface names.
//
// It builds and parses messages with vishvananda/netlink's nl package and
// sends them over a plain blocking socket: a short-lived helper so avoids
// linking netlink.LinkDeserialize (which references every link type the
// library knows) and the runtime's network poller, both start-up costs.
// A Link holds only what the helpers read; tests compare it with what
// vishvananda/netlink reads.
//
// Errors from the kernel keep their errno (errors.Is(err, unix.EPERM));
// an interface that does not exist also matches ErrNotFound.
package link
