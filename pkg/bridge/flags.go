package bridge

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A Flag is one flag of a Linux bridge port that the helpers set.
type Flag int

// The flags, in the order they are set.
const (
	// FlagIsolated: an isolated port forwards only to ports that are not
	// isolated (the bridge's own interface, an uplink), so guests on
	// isolated ports reach the host but not each other.
	FlagIsolated Flag = iota
	// FlagLearning: the bridge learns the source MACs seen on the port.
	FlagLearning
	// FlagUnicastFlood: unicast frames for unknown MACs are flooded to
	// the port.
	FlagUnicastFlood
	numFlags
)

// String is the flag's name as "bridge link" prints it.
func (f Flag) String() string {
	switch f {
	case FlagIsolated:
		return "isolated"
	case FlagLearning:
		return "learning"
	case FlagUnicastFlood:
		return "flood"
	}
	return fmt.Sprintf("flag %d", int(f))
}

// field is the field of p that holds f: the one place a flag meets the
// kernel's report of a port.
func (f Flag) field(p *link.BridgePort) *bool {
	switch f {
	case FlagIsolated:
		return &p.Isolated
	case FlagLearning:
		return &p.Learning
	}
	return &p.UnicastFlood
}

func (f Flag) of(p *link.BridgePort) bool { return *f.field(p) }

// A PortFlags says which flags a port should have. A flag that is not
// given is left as the port has it.
type PortFlags struct {
	given [numFlags]bool
	on    [numFlags]bool
}

// Set gives flag f the value on.
func (p *PortFlags) Set(f Flag, on bool) {
	p.given[f], p.on[f] = true, on
}

// Get returns flag f's value and whether it is given.
func (p PortFlags) Get(f Flag) (on, given bool) { return p.on[f], p.given[f] }

// Equal reports whether p and o give the same flags the same values (for
// go-cmp; == does the same).
func (p PortFlags) Equal(o PortFlags) bool { return p == o }

// String lists the flags given, as "isolated on learning off".
func (p PortFlags) String() string {
	var parts []string
	for f := range numFlags {
		if p.given[f] {
			parts = append(parts, FlagChange{f, p.on[f]}.String())
		}
	}
	return strings.Join(parts, " ")
}

// IsZero reports whether no flag is given.
func (p PortFlags) IsZero() bool { return p.given == [numFlags]bool{} }

// A FlagChange is one flag to set on a port.
type FlagChange struct {
	Flag Flag
	On   bool
}

func (c FlagChange) String() string {
	if c.On {
		return c.Flag.String() + " on"
	}
	return c.Flag.String() + " off"
}

// Changes lists the flags of want that the port, as read in have, does
// not have yet; nil when none differ.
func (want PortFlags) Changes(have *link.BridgePort) []FlagChange {
	var cs []FlagChange
	for f := range numFlags {
		if want.given[f] && want.on[f] != f.of(have) {
			cs = append(cs, FlagChange{Flag: f, On: want.on[f]})
		}
	}
	return cs
}

// apply returns have with the flags p gives.
func (p PortFlags) apply(have link.BridgePort) link.BridgePort {
	for f := range numFlags {
		if p.given[f] {
			*f.field(&have) = p.on[f]
		}
	}
	return have
}

// ErrFlagIgnored is returned (wrapped) when the kernel accepted a flag
// without applying it, as kernels that do not know a flag may.
var ErrFlagIgnored = errors.New("the kernel ignored it")

// setFlag sets one flag on the port l and reads the port back: a flag
// that did not take is an error (ErrFlagIgnored), so a host whose kernel
// lacks it never runs a guest believed isolated.
//
// Equivalent to: bridge link set dev $port $flag on|off
func setFlag(c *link.Conn, l *link.Link, fc FlagChange) error {
	var err error
	switch fc.Flag {
	case FlagIsolated:
		err = c.SetIsolated(l, fc.On)
	case FlagLearning:
		err = c.SetLearning(l, fc.On)
	case FlagUnicastFlood:
		err = c.SetUnicastFlood(l, fc.On)
	default:
		err = fmt.Errorf("unknown %v", fc.Flag)
	}
	if err != nil {
		return fmt.Errorf("set %s of %s: %w", fc, l.Name, err)
	}
	got, err := c.ByIndex(l.Index)
	switch {
	case err != nil:
		return fmt.Errorf("set %s of %s: read back: %w", fc, l.Name, err)
	case got.BridgePort == nil:
		return fmt.Errorf("set %s of %s: no longer a bridge port", fc, l.Name)
	case fc.Flag.of(got.BridgePort) != fc.On:
		return fmt.Errorf("set %s of %s: %w", fc, l.Name, ErrFlagIgnored)
	}
	return nil
}

// addStaticFDB makes the bridge send frames for mac (a guest's) to the
// port l without learning it, for a port with learning off, and checks
// that the entry is there.
//
// Equivalent to: bridge fdb replace $mac dev $port master static
func addStaticFDB(c *link.Conn, l *link.Link, mac net.HardwareAddr) error {
	if err := c.AddStaticFDB(l, mac); err != nil {
		return fmt.Errorf("add static fdb entry %s on %s: %w", mac, l.Name, err)
	}
	ok, err := c.StaticFDB(l, mac)
	switch {
	case err != nil:
		return fmt.Errorf("add static fdb entry %s on %s: read back: %w", mac, l.Name, err)
	case !ok:
		return fmt.Errorf("add static fdb entry %s on %s: %w", mac, l.Name, ErrFlagIgnored)
	}
	return nil
}

// delFDB removes the forwarding entry for mac from the port l; an entry
// that is not there is not an error.
//
// Equivalent to: bridge fdb del $mac dev $port master
func delFDB(c *link.Conn, l *link.Link, mac net.HardwareAddr) error {
	if err := c.DelFDB(l, mac); err != nil {
		return fmt.Errorf("remove fdb entry %s from %s: %w", mac, l.Name, err)
	}
	return nil
}
