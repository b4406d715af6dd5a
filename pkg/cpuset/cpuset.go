// Package cpuset parses and prints sets of host CPUs in the two notations
// users meet: taskset's list syntax ("2,3", "0-3,8") and hexadecimal
// affinity masks ("0x4", as in -vcpu N,affinity=0x4).
package cpuset

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bitset"
)

// MaxCPU bounds the CPU numbers accepted: the size of the cpu_set_t that
// sched_setaffinity takes here (1024, as glibc's).
const MaxCPU = len(unix.CPUSet{}) * 64

// A Set is a set of CPU numbers. The zero value is empty.
type Set struct {
	words []uint64
}

// Of returns the set holding cpus.
func Of(cpus ...int) Set {
	var s Set
	for _, c := range cpus {
		s.Add(c)
	}
	return s
}

// Add puts cpu in the set.
func (s *Set) Add(cpu int) {
	w := cpu / 64
	for len(s.words) <= w {
		s.words = append(s.words, 0)
	}
	s.words[w] |= 1 << (cpu % 64)
}

// Has reports whether cpu is in the set.
func (s Set) Has(cpu int) bool {
	w := cpu / 64
	return cpu >= 0 && w < len(s.words) && s.words[w]&(1<<(cpu%64)) != 0
}

// Empty reports whether the set holds no CPU.
func (s Set) Empty() bool { return s.Count() == 0 }

// Count is the number of CPUs in the set.
func (s Set) Count() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// CPUs lists the set in increasing order.
func (s Set) CPUs() []int { return bitset.Members(s.words) }

// Equal reports whether both sets hold the same CPUs.
func (s Set) Equal(o Set) bool {
	return s.Minus(o).Empty() && o.Minus(s).Empty()
}

// Minus returns the CPUs of s that are not in o.
func (s Set) Minus(o Set) Set {
	var out Set
	for _, c := range s.CPUs() {
		if !o.Has(c) {
			out.Add(c)
		}
	}
	return out
}

// String prints the set in list syntax with ranges, as taskset -c and
// /sys/devices/system/cpu/online do: "0-3,8". The empty set prints "".
func (s Set) String() string {
	cpus := s.CPUs()
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			fmt.Fprintf(&b, "-%d", cpus[j])
		}
		i = j + 1
	}
	return b.String()
}

// Mask prints the set as a hexadecimal mask, "0x4" for CPU 2.
func (s Set) Mask() string {
	n := len(s.words)
	for n > 0 && s.words[n-1] == 0 {
		n--
	}
	if n == 0 {
		return "0x0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "0x%x", s.words[n-1])
	for i := n - 2; i >= 0; i-- {
		fmt.Fprintf(&b, "%016x", s.words[i])
	}
	return b.String()
}

// ParseList parses taskset's list syntax: comma-separated CPU numbers and
// ranges, a range optionally with a stride ("0-7:2" is 0,2,4,6).
func ParseList(s string) (Set, error) {
	var set Set
	if strings.TrimSpace(s) == "" {
		return set, errors.New("empty CPU list")
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		rng, stride, hasStride := strings.Cut(part, ":")
		lo, hi, isRange := strings.Cut(rng, "-")
		first, err := cpuNumber(lo)
		if err != nil {
			return Set{}, fmt.Errorf("CPU list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = cpuNumber(hi); err != nil {
				return Set{}, fmt.Errorf("CPU list %q: %w", s, err)
			}
			if last < first {
				return Set{}, fmt.Errorf("CPU list %q: range %s runs backwards", s, rng)
			}
		}
		step := 1
		if hasStride {
			if !isRange {
				return Set{}, fmt.Errorf("CPU list %q: stride without a range in %q", s, part)
			}
			step, err = strconv.Atoi(stride)
			if err != nil || step < 1 {
				return Set{}, fmt.Errorf("CPU list %q: bad stride %q", s, stride)
			}
		}
		for c := first; c <= last; c += step {
			set.Add(c)
		}
	}
	return set, nil
}

func cpuNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	if n >= MaxCPU {
		return 0, fmt.Errorf("CPU %d is past the limit of %d", n, MaxCPU)
	}
	return n, nil
}

// ParseMask parses a hexadecimal affinity mask, with or without "0x", as
// taskset and -vcpu affinity= take it: bit N set means CPU N. Commas
// between 32-bit groups, as in /proc/PID/status Cpus_allowed, are allowed.
func ParseMask(s string) (Set, error) {
	h := strings.ReplaceAll(s, ",", "")
	h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
	if h == "" {
		return Set{}, fmt.Errorf("affinity mask %q: no digits", s)
	}
	if len(h) > MaxCPU/4 {
		return Set{}, fmt.Errorf("affinity mask %q: longer than %d CPUs", s, MaxCPU)
	}
	var set Set
	for i := 0; i < len(h); i++ {
		d, err := strconv.ParseUint(h[len(h)-1-i:len(h)-i], 16, 8)
		if err != nil {
			return Set{}, fmt.Errorf("affinity mask %q: %q is not a hex digit", s, h[len(h)-1-i])
		}
		for b := 0; b < 4; b++ {
			if d&(1<<b) != 0 {
				set.Add(i*4 + b)
			}
		}
	}
	if set.Empty() {
		return Set{}, fmt.Errorf("affinity mask %q: no CPU", s)
	}
	return set, nil
}

// Parse takes either notation: a mask when s starts with "0x", else a list.
func Parse(s string) (Set, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return ParseMask(s)
	}
	return ParseList(s)
}

// OnlinePath is where the kernel lists the online CPUs.
const OnlinePath = "/sys/devices/system/cpu/online"

// Online returns the CPUs the kernel has online.
func Online() (Set, error) {
	data, err := os.ReadFile(OnlinePath)
	if err != nil {
		return Set{}, fmt.Errorf("reading online CPUs: %w", err)
	}
	s, err := ParseList(strings.TrimSpace(string(data)))
	if err != nil {
		return Set{}, fmt.Errorf("%s: %w", OnlinePath, err)
	}
	return s, nil
}

// Unix converts the set for sched_setaffinity.
func (s Set) Unix() unix.CPUSet {
	var u unix.CPUSet
	u.Zero()
	for _, c := range s.CPUs() {
		u.Set(c)
	}
	return u
}

// FromUnix converts what sched_getaffinity returned.
func FromUnix(u *unix.CPUSet) Set {
	var s Set
	for c := 0; c < len(u)*64; c++ {
		if u.IsSet(c) {
			s.Add(c)
		}
	}
	return s
}
