package ifscript

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bridgeacl"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A Caller is who ran a helper that holds privileges its caller lacks (a
// file capability): the helper then acts only on that caller's own taps
// and only on bridges the bridge helper's ACL allows, so that installing it
// with cap_net_admin never lets one user detach another user's tap.
type Caller struct {
	UID    int
	Groups []int // the primary group first
	// ACL is the bridge ACL file (bridgeacl.Path).
	ACL string
}

// thisCaller is the real user and groups of this process.
func thisCaller() (*Caller, error) {
	groups, err := os.Getgroups()
	if err != nil {
		return nil, fmt.Errorf("read the caller's groups: %w", err)
	}
	return &Caller{UID: os.Getuid(), Groups: append([]int{os.Getgid()}, groups...), ACL: bridgeacl.Path}, nil
}

// owns reports whether the kernel would let the caller attach to the tun
// device t without privileges: an owner or a group is set, and each that
// is set is the caller's (tun_not_capable in drivers/net/tun.c).
func (c *Caller) owns(t *link.Tun) bool {
	if t.Owner == -1 && t.Group == -1 {
		return false
	}
	return (t.Owner == -1 || t.Owner == int64(c.UID)) &&
		(t.Group == -1 || slices.Contains(c.Groups, int(t.Group)))
}

// checkTap refuses a tap the caller does not own. A tap that does not
// exist is left to the caller's own handling (ifdown: nothing to do).
func (c *Caller) checkTap(ifname string) error {
	conn, err := link.Open()
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer conn.Close()
	l, err := conn.ByName(ifname)
	switch {
	case errors.Is(err, link.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("%s: look up: %w", ifname, err)
	case l.Tun == nil || !l.Tun.Tap:
		return fmt.Errorf("%s: not a tap interface, and run with a capability only the caller's own taps are touched", ifname)
	case !c.owns(l.Tun):
		return fmt.Errorf("%s: not the caller's tap (%s; caller uid %d): run with a capability, qemu-ifup and qemu-ifdown touch only taps whose owner or group is the caller's",
			ifname, ownerString(l.Tun), c.UID)
	}
	return nil
}

func ownerString(t *link.Tun) string {
	switch {
	case t.Owner == -1 && t.Group == -1:
		return "no owner or group"
	case t.Group == -1:
		return fmt.Sprintf("owner uid %d", t.Owner)
	case t.Owner == -1:
		return fmt.Sprintf("group gid %d", t.Group)
	}
	return fmt.Sprintf("owner uid %d, group gid %d", t.Owner, t.Group)
}

// checkBridge refuses a bridge the ACL does not allow, with the ACL's own
// explanation (which file, which line, how to allow it).
func (c *Caller) checkBridge(ifname, br string) error {
	if err := bridgeacl.CheckFile(c.ACL, br, bridgeacl.Options{Strict: true}); err != nil {
		return fmt.Errorf("%s: %w", ifname, err)
	}
	return nil
}

// guard, in a run with privileges the caller lacks, refuses a tap that is
// not the caller's and a bridge (br, "" for none) the ACL does not allow,
// before anything changes.
func (s *System) guard(ifname, br string) error {
	if !s.Secure {
		return nil
	}
	c, err := thisCaller()
	if err != nil {
		return err
	}
	if err := c.checkTap(ifname); err != nil {
		return err
	}
	if br == "" {
		return nil
	}
	return c.checkBridge(ifname, br)
}
