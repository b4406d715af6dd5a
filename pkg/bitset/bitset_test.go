package bitset

import (
	"slices"
	"testing"
)

func TestMembers(t *testing.T) {
	tests := []struct {
		words []uint64
		want  []int
	}{
		{nil, nil},
		{[]uint64{0, 0}, nil},
		{[]uint64{1 << 3}, []int{3}},
		{[]uint64{1<<0 | 1<<63, 1 << 1}, []int{0, 63, 65}},
	}
	for _, tt := range tests {
		if got := Members(tt.words); !slices.Equal(got, tt.want) {
			t.Errorf("Members(%x) = %v, want %v", tt.words, got, tt.want)
		}
	}
}
