package filekind

import (
	"io/fs"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		want string
	}{
		{fs.ModeDir | 0o755, "a directory"},
		{fs.ModeNamedPipe | 0o600, "a FIFO"},
		{fs.ModeSocket, "a socket"},
		{fs.ModeSymlink | 0o777, "a symlink"},
		{fs.ModeDevice, "a device"},
		{fs.ModeDevice | fs.ModeCharDevice, "a device"},
		{fs.ModeIrregular, "another kind of file"},
	} {
		if got := Of(tc.mode); got != tc.want {
			t.Errorf("Of(%v) = %q, want %q", tc.mode, got, tc.want)
		}
	}
}
