// Package filekind names the type of a file that is not a regular one,
// for messages that refuse it: "not a regular file but a FIFO".
package filekind

import "io/fs"

// Of names the type of m with its article: "a directory", "a FIFO", ...;
// "another kind of file" for a type without a name here.
func Of(m fs.FileMode) string {
	switch m.Type() {
	case fs.ModeDir:
		return "a directory"
	case fs.ModeNamedPipe:
		return "a FIFO"
	case fs.ModeSocket:
		return "a socket"
	case fs.ModeSymlink:
		return "a symlink"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "another kind of file"
}
