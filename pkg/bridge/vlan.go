package bridge

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bitset"
)

// MaxVLAN is the highest VLAN ID a port can carry (4095 is reserved).
const MaxVLAN = 4094

// A VLANSet is a set of VLAN IDs from 1 to MaxVLAN, such as an OVS trunk
// port's trunks. The zero VLANSet is empty; sets compare with ==.
type VLANSet struct {
	bits [(MaxVLAN + 64) / 64]uint64
}

// ParseVLANs parses VLAN IDs and ranges separated by spaces or commas:
// "10 20", "100-199,300". An empty string is an error: a port trunking no
// VLAN carries nothing.
func ParseVLANs(s string) (VLANSet, error) {
	var v VLANSet
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 0 {
		return v, fmt.Errorf("no VLAN given")
	}
	for _, f := range fields {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := ParseVLAN(lo)
		if err != nil {
			return v, err
		}
		b := a
		if isRange {
			if b, err = ParseVLAN(hi); err != nil {
				return v, err
			}
			if b < a {
				return v, fmt.Errorf("VLAN range %q runs backwards", f)
			}
		}
		for id := a; id <= b; id++ {
			v.bits[id/64] |= 1 << (id % 64)
		}
	}
	return v, nil
}

// ParseVLAN parses one VLAN ID, 1 to MaxVLAN.
func ParseVLAN(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !validVLAN(n) {
		return 0, fmt.Errorf("%q is not a VLAN ID from 1 to %d", s, MaxVLAN)
	}
	return n, nil
}

func validVLAN(id int) bool { return id >= 1 && id <= MaxVLAN }

// IsEmpty reports whether the set has no VLAN.
func (v VLANSet) IsEmpty() bool { return v == VLANSet{} }

// List returns the VLAN IDs in ascending order; nil for an empty set.
func (v VLANSet) List() []int { return bitset.Members(v.bits[:]) }

// String lists the set with ranges, as ParseVLANs reads it: "10,20,100-199".
func (v VLANSet) String() string {
	ids := v.List()
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.Itoa(ids[i]))
		case j == i+1:
			parts = append(parts, strconv.Itoa(ids[i]), strconv.Itoa(ids[j]))
		default:
			parts = append(parts, strconv.Itoa(ids[i])+"-"+strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Equal reports whether v and o hold the same VLANs (for go-cmp; == does
// the same).
func (v VLANSet) Equal(o VLANSet) bool { return v == o }
