// Package tap configures a QEMU tap interface as a port of a Linux bridge,
// the job of /etc/qemu-ifup and /etc/qemu-ifdown, over netlink.
package tap
