// Package tap configures a QEMU tap as a bridge port, the job of
// /etc/qemu-ifup and /etc/qemu-ifdown, over netlink.
//
// PlanUp and PlanDown read the tap and compute the changes to its own state
// (MTU, MAC, promiscuous mode, up) and to its bridge membership, which
// package bridge carries out; Plan.Apply makes them in order and undoes
// them all if one fails. A plan without changes means the tap is already
// as asked.
package tap
