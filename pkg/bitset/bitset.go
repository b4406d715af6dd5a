// Package bitset walks sets of small non-negative numbers kept as bits of
// uint64 words, bit n%64 of word n/64 for n: the one walk of the CPU sets
// and VLAN sets.
package bitset

import "math/bits"

// Members lists the numbers whose bits are set in words, in increasing
// order; nil for none.
func Members(words []uint64) []int {
	var out []int
	for i, w := range words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}
