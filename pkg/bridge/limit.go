package bridge

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A Limit caps the traffic one way through a port, as tc's token bucket
// does: a rate and the burst allowed above it. The zero Limit is none.
type Limit struct {
	// Rate is in bits per second; 0 for no limit.
	Rate uint64
	// Burst is in bytes; 0 for DefaultBurst(Rate).
	Burst uint64
}

// Limits on a rate and a burst, so that every rate fits the kernel's
// 64-bit bytes per second and every burst its 32-bit byte counts.
const (
	MinRate  = 8_000             // 8 kbit/s: one byte a millisecond
	MaxRate  = 1_000_000_000_000 // 1 Tbit/s
	MinBurst = 2048              // a full-size frame and then some
	MaxBurst = 1 << 30
)

// Set reports whether the limit caps anything.
func (l Limit) Set() bool { return l.Rate != 0 }

// BurstBytes is the burst in bytes: Burst, or DefaultBurst(Rate).
func (l Limit) BurstBytes() uint64 {
	if l.Burst != 0 {
		return l.Burst
	}
	return DefaultBurst(l.Rate)
}

// DefaultBurst is the burst of a rate given without one: 20 ms at the
// rate, and at least 32 KiB, so that a slow port still passes a few
// full-size frames, or a TCP segment offloaded whole, at once.
func DefaultBurst(rate uint64) uint64 {
	return max(rate/8/50, 32<<10)
}

// String is "1M burst 32K", as ParseRate and ParseBurst read them.
func (l Limit) String() string {
	return FormatRate(l.Rate) + " burst " + FormatBurst(l.BurstBytes())
}

var rateUnits = []struct {
	suffix string
	mult   uint64
}{{"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}}

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}

// ParseRate parses a rate in bits per second with an SI suffix, as tc
// reads "1mbit": "1M" is 1 000 000 bit/s, "500K" 500 000, "2G" 2e9.
func ParseRate(s string) (uint64, error) {
	n, err := parseScaled(s, rateUnits[:])
	if err != nil || n < MinRate || n > MaxRate {
		return 0, fmt.Errorf("%q is not a rate in bits per second from 8K to 1T (1M is 1 Mbit/s)", s)
	}
	return n, nil
}

// ParseBurst parses a size in bytes with a binary suffix, as tc reads
// "32k": "32K" is 32 768 bytes, "1M" 1 048 576.
func ParseBurst(s string) (uint64, error) {
	n, err := parseScaled(s, sizeUnits[:])
	if err != nil || n < MinBurst || n > MaxBurst {
		return 0, fmt.Errorf("%q is not a size in bytes from 2K to 1G (32K is 32 KiB)", s)
	}
	return n, nil
}

// parseScaled parses a whole number with one of units' suffixes, in
// either case.
func parseScaled(s string, units []struct {
	suffix string
	mult   uint64
}) (uint64, error) {
	mult := uint64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(strings.ToUpper(s), u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > ^uint64(0)/mult {
		return 0, fmt.Errorf("not a number")
	}
	return n * mult, nil
}

// FormatRate writes a rate in bits per second as ParseRate reads it,
// with the largest suffix that keeps it whole.
func FormatRate(n uint64) string { return formatScaled(n, rateUnits[:]) }

// FormatBurst writes a size in bytes as ParseBurst reads it.
func FormatBurst(n uint64) string { return formatScaled(n, sizeUnits[:]) }

func formatScaled(n uint64, units []struct {
	suffix string
	mult   uint64
}) string {
	for _, u := range units {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatUint(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}

// MaxAddrs bounds the addresses a port may send from.
const MaxAddrs = 16

// Addrs are the IP addresses a guest may send from: IPv4 and IPv6, in the
// order given, without repeats. The zero Addrs is empty; Addrs compare
// with ==.
type Addrs struct {
	n int
	a [MaxAddrs]netip.Addr
}

// ParseAddrs parses addresses separated by spaces or commas, such as
// "192.168.122.10 fd00::10". Multicast and unspecified addresses, which
// no guest sends from, are refused.
func ParseAddrs(s string) (Addrs, error) {
	var as Addrs
	return as, as.Add(s)
}

// Add adds the addresses s gives, as ParseAddrs reads them.
func (as *Addrs) Add(s string) error {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		a, err := netip.ParseAddr(f)
		switch {
		case err != nil || a.Zone() != "":
			return fmt.Errorf("%q is not an IPv4 or IPv6 address", f)
		case a.IsMulticast() || a.IsUnspecified():
			return fmt.Errorf("%s is not an address a guest sends from", a)
		}
		a = a.Unmap()
		if as.Has(a) {
			continue
		}
		if as.n == MaxAddrs {
			return fmt.Errorf("more than %d addresses", MaxAddrs)
		}
		as.a[as.n] = a
		as.n++
	}
	return nil
}

// Has reports whether a is among the addresses.
func (as Addrs) Has(a netip.Addr) bool {
	for _, b := range as.List() {
		if a == b {
			return true
		}
	}
	return false
}

// List returns the addresses in the order given.
func (as Addrs) List() []netip.Addr { return as.a[:as.n] }

// IsEmpty reports whether no address was given.
func (as Addrs) IsEmpty() bool { return as.n == 0 }

// String lists the addresses separated by spaces.
func (as Addrs) String() string {
	var parts []string
	for _, a := range as.List() {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, " ")
}

// Equal reports whether as and o are the same addresses in the same
// order.
func (as Addrs) Equal(o Addrs) bool { return as == o }
