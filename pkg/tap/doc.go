// Package tap configures a QEMU tap as a bridge port, the job of
// /etc/qemu-ifup and /etc/qemu-ifdown, over netlink.
//
// PlanUp and PlanDown read the tap and plan the steps that change its own
// state (MTU, MAC, promiscuous mode, up) and its bridge membership. The
// bridge's steps come from its kind, in package bridge: this package
// orders them and never asks which kind of bridge it holds. Plan.Apply
// makes the steps in order and, if one fails, undoes those made. A plan
// without steps means the tap is already as asked.
package tap
