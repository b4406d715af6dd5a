package bridge

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A Linux bridge whose MAC nobody set takes the lowest MAC of its ports,
// again whenever a port joins, leaves or changes its MAC, and whoever
// holds a tap's descriptor may set any MAC on it (SIOCSIFHWADDR): a VM
// could so give the bridge, and the host's address on it, the MAC of its
// choice. Once its MAC is set explicitly (addr_assign_type
// NET_ADDR_SET), a bridge keeps it. Before a port joins, pinMAC sets the
// bridge's MAC to what it is, unless it was set already.
//
// Setting a MAC makes the kernel flush the bridge's neighbour entries,
// static ones too: it is done only where the MAC may still be the
// kernel's choice.

// netAddrSet is NET_ADDR_SET in addr_assign_type (<linux/netdevice.h>).
const netAddrSet = 3

// pinMAC sets b's MAC explicitly to its current value, unless it was set
// explicitly already.
func (b *Linux) pinMAC(c *link.Conn) error {
	br, err := c.ByIndex(b.index)
	if err != nil {
		return err
	}
	if br.MAC == nil {
		return nil
	}
	set, err := macSet(c, br)
	if err != nil || set {
		return err
	}
	return c.SetMAC(br, br.MAC)
}

// macSet reports whether the bridge br's MAC was set explicitly. Netlink
// does not say: sysfs does, when it shows this network namespace's
// interfaces (it shows those of the namespace that mounted it), or a
// sysfs mounted afresh from this namespace where mounting is allowed;
// failing that, a MAC other than the lowest of the bridge's ports cannot be the
// kernel's choice. A bridge with no port, or with the MAC of its lowest
// port, counts as not set.
func macSet(c *link.Conn, br *link.Link) (bool, error) {
	if typ, ok := sysfsAssignType(br); ok {
		return typ == netAddrSet, nil
	}
	if typ, ok := freshSysfsAssignType(c, br); ok {
		return typ == netAddrSet, nil
	}
	lowest, err := c.LowestPortMAC(br.Index)
	if err != nil {
		return false, fmt.Errorf("list ports: %w", err)
	}
	return lowest != nil && !bytes.Equal(lowest, br.MAC), nil
}

// freshSysfsAssignType reads br's addr_assign_type from a sysfs mounted
// from c's network namespace, on a thread of a mount namespace of its
// own (the thread ends with it). Without it, a bridge pinned to the MAC
// of its lowest port would be pinned again at every ifup, and each pin
// flushes its neighbours.
func freshSysfsAssignType(c *link.Conn, br *link.Link) (int, bool) {
	ns, err := c.NetNS()
	if err != nil {
		return 0, false
	}
	type result struct {
		typ int
		ok  bool
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if unix.Unshare(unix.CLONE_NEWNS) != nil ||
			unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, "") != nil ||
			unix.Setns(ns, unix.CLONE_NEWNET) != nil ||
			unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "") != nil {
			ch <- result{}
			return
		}
		typ, ok := sysfsAssignType(br)
		ch <- result{typ, ok}
	}()
	r := <-ch
	return r.typ, r.ok
}

// sysfsAssignType reads br's addr_assign_type from sysfs, if the
// interface sysfs shows under its name has its index and MAC: sysfs is
// then this namespace's.
func sysfsAssignType(br *link.Link) (int, bool) {
	dir := filepath.Join("/sys/class/net", br.Name)
	read := func(name string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b)), err == nil
	}
	idx, ok1 := read("ifindex")
	mac, ok2 := read("address")
	typ, ok3 := read("addr_assign_type")
	if !ok1 || !ok2 || !ok3 || idx != strconv.Itoa(br.Index) || mac != br.MAC.String() {
		return 0, false
	}
	n, err := strconv.Atoi(typ)
	return n, err == nil
}
