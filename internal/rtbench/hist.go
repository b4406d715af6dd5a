package rtbench

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// A Hist is cyclictest's latency histogram: samples per 1 µs bucket, and
// those beyond the last bucket.
type Hist struct {
	Buckets   map[int]int64 // µs -> samples
	Overflows int64
	Max       int // µs, cyclictest's own maximum
}

// Add reads one report of the guest's (test/guest/init, without the
// marker): "cyclictest hist US COUNT", "cyclictest overflows N",
// "cyclictest max US". Others are not its and are ignored. The numbers
// have leading zeros and are decimal.
func (h *Hist) Add(report string) error {
	f := strings.Fields(report)
	if len(f) < 2 || f[0] != "cyclictest" {
		return nil
	}
	num := func(s string) (int64, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("cyclictest report %q: bad number %q", report, s)
		}
		return n, nil
	}
	switch {
	case f[1] == "hist" && len(f) == 4:
		us, err := num(f[2])
		if err != nil {
			return err
		}
		n, err := num(f[3])
		if err != nil {
			return err
		}
		if h.Buckets == nil {
			h.Buckets = map[int]int64{}
		}
		h.Buckets[int(us)] += n
	case f[1] == "overflows" && len(f) == 3:
		n, err := num(f[2])
		if err != nil {
			return err
		}
		h.Overflows += n
	case f[1] == "max" && len(f) == 3:
		n, err := num(f[2])
		if err != nil {
			return err
		}
		h.Max = max(h.Max, int(n))
	}
	return nil
}

// Samples is how many wake-ups the histogram holds.
func (h *Hist) Samples() int64 {
	n := h.Overflows
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// Percentile is the smallest latency in µs at or below which a fraction p
// of the samples lie; -1 when it falls among the overflows (beyond the
// histogram) or there are no samples.
func (h *Hist) Percentile(p float64) int {
	total := h.Samples()
	if total == 0 {
		return -1
	}
	want := int64(p*float64(total) + 0.999999)
	want = max(want, 1)
	var seen int64
	for _, us := range slices.Sorted(maps.Keys(h.Buckets)) {
		seen += h.Buckets[us]
		if seen >= want {
			return us
		}
	}
	return -1
}
