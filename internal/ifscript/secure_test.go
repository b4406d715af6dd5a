package ifscript

import (
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// TestOwns mirrors the kernel's rule for attaching to a tun device without
// privileges: each of owner and group that is set must be the caller's,
// and a device with neither is nobody's.
func TestOwns(t *testing.T) {
	c := &Caller{UID: 1000, Groups: []int{1000, 27, 108}}
	tests := []struct {
		owner, group int64
		want         bool
	}{
		{1000, -1, true},
		{-1, 1000, true},
		{-1, 108, true}, // a supplementary group
		{1000, 108, true},
		{-1, -1, false},
		{0, -1, false},
		{1001, -1, false},
		{-1, 0, false},
		{1000, 0, false}, // the owner is the caller's, the group is not
		{1001, 1000, false},
	}
	for _, tt := range tests {
		if got := c.owns(&link.Tun{Tap: true, Owner: tt.owner, Group: tt.group}); got != tt.want {
			t.Errorf("owns(owner %d, group %d) = %v, want %v", tt.owner, tt.group, got, tt.want)
		}
	}
}
