package link

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest interface name Linux accepts (IFNAMSIZ - 1).
// Longer names are silently truncated by TUNSETIFF and by vishvananda/netlink,
// so acting on one could touch another interface (compare CVE-2019-13164).
const MaxNameLen = 15

// A NameError says why a string is not an interface name.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid interface name %q: %s", e.Name, e.Reason)
}

// ValidateName checks name the way the kernel's dev_valid_name does, and
// also refuses what could inject into a QEMU option or a command line, or
// make a log line or a journal field ambiguous: 1 to 15 bytes of
// printable ASCII, not "." or "..", no '/', ':', ',' or '=' (QEMU's
// option syntax: ifname=a,script=x), no '%' (a kernel name template,
// never the name of an interface), no leading '-' (a tap named
// "--help" would make its up-script print help and succeed).
func ValidateName(name string) error {
	bad := func(reason string) error { return &NameError{Name: name, Reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("%d bytes, longer than %d", len(name), MaxNameLen))
	case name == "." || name == "..":
		return bad("reserved")
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case r == '/' || r == ':':
			return bad(fmt.Sprintf("contains %q", r))
		case r == ',' || r == '=':
			return bad(fmt.Sprintf("contains %q (QEMU's option syntax)", r))
		case r == '%':
			// A template the kernel fills in ("tap%d"), and a printf
			// verb in any message built from the name.
			return bad("contains '%' (a name template, not a name)")
		case unicode.IsSpace(r):
			return bad("contains whitespace")
		case unicode.IsControl(r):
			return bad("contains a control character")
		case r > '~':
			return bad(fmt.Sprintf("contains %q (not printable ASCII)", r))
		}
	}
	if name[0] == '-' {
		return bad("starts with '-' (reads as an option)")
	}
	return nil
}
