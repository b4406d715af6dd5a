// Package bridgeacl reads the access-control file of QEMU's bridge helper,
// /etc/qemu/bridge.conf, which says the bridges unprivileged users may put
// their taps on. The syntax is upstream's, so that an existing file keeps
// its meaning:
//
//	# comment
//	allow virbr0
//	allow all
//	deny br-uplink
//	deny all
//	include /etc/qemu/other.conf
//
// No file or no matching rule means deny, and a deny rule wins over an
// allow rule wherever it stands. Where ours differs from upstream: an error
// in an included file (missing, unreadable, malformed) is an error, not
// ignored, because the rule lost might be a deny; a relative include is
// taken relative to the including file, not to the caller's working
// directory; and, for a caller who is not root, every file must be owned by
// root and writable by no one else, and so must every directory on its
// path (package trust), since it decides what a capability may be used
// for: whoever may write a directory may swap a file there for another.
package bridgeacl

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/trust"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// DefaultPath is upstream's ACL file, the one QEMU's own helper reads.
const DefaultPath = "/etc/qemu/bridge.conf"

// Path is the ACL file the helpers read. It is set at build time only
// (go build -ldflags "-X .../internal/bridgeacl.Path=FILE"), never from
// the environment or the command line, which are the caller's to choose:
// for distributions that keep it elsewhere (/etc/qemu-kvm/bridge.conf)
// and for tests.
var Path = DefaultPath

// maxDepth bounds nested includes; upstream has no bound and recurses
// until it runs out of file descriptors on a loop.
const maxDepth = 8

// maxSize bounds one file: an ACL is a few lines.
const maxSize = 1 << 20

// A Rule is one allow or deny line.
type Rule struct {
	Allow  bool
	Bridge string // "all" for every bridge
	File   string
	Line   int
}

func (r Rule) String() string {
	verb := "deny"
	if r.Allow {
		verb = "allow"
	}
	return fmt.Sprintf("%s:%d (%s %s)", r.File, r.Line, verb, r.Bridge)
}

// An ACL is the rules of a file and its includes, in order.
type ACL struct {
	Path  string // the top file
	Rules []Rule
}

// Options change how Load reads files.
type Options struct {
	// Strict requires every file to be a regular file that root trusts
	// (trust.Check: root's, and writable by no one else, as is every
	// directory on its path): set it when the caller is not root.
	Strict bool
}

// Load reads the ACL file at path and the files it includes.
func Load(path string, o Options) (*ACL, error) {
	a := &ACL{Path: path}
	if err := a.load(path, o, nil); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *ACL) load(path string, o Options, stack []string) error {
	if len(stack) >= maxDepth {
		return fmt.Errorf("%s: includes nested deeper than %d", path, maxDepth)
	}
	for _, p := range stack {
		if p == path {
			return fmt.Errorf("%s: included again from %s (an include loop)", path, stack[len(stack)-1])
		}
	}
	data, err := readFile(path, o)
	if errors.Is(err, fs.ErrNotExist) && len(stack) == 0 {
		return &MissingError{Path: path}
	}
	if err != nil {
		return err
	}
	stack = append(stack, path)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		// Upstream splits at the first blank and trims the rest.
		cmd, arg := line, ""
		if j := strings.IndexAny(line, " \t"); j >= 0 {
			cmd, arg = line[:j], strings.TrimSpace(line[j+1:])
		}
		if arg == "" {
			return fmt.Errorf("%s:%d: %q: want allow NAME, deny NAME or include FILE", path, n, line)
		}
		switch cmd {
		case "allow", "deny":
			if arg != "all" {
				if err := link.ValidateName(arg); err != nil {
					return fmt.Errorf("%s:%d: %w", path, n, err)
				}
			}
			a.Rules = append(a.Rules, Rule{Allow: cmd == "allow", Bridge: arg, File: path, Line: n})
		case "include":
			inc := arg
			if !filepath.IsAbs(inc) {
				inc = filepath.Join(filepath.Dir(path), inc)
			}
			if err := a.load(inc, o, stack); err != nil {
				return fmt.Errorf("%s:%d: include: %w", path, n, err)
			}
		default:
			return fmt.Errorf("%s:%d: unknown command %q (want allow, deny or include)", path, n, cmd)
		}
	}
	return nil
}

// readFile reads one ACL file as the helpers read their configuration
// (regular files only, no blocking on a FIFO, bounded) and, when strict,
// only if root trusts it. Once the check passes, no one but root may
// change what path leads to.
func readFile(path string, o Options) ([]byte, error) {
	if o.Strict {
		err := trust.Check(path)
		if errors.Is(err, fs.ErrNotExist) {
			// Said as reading it would say it.
			return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
		}
		if err != nil {
			return nil, err
		}
	}
	return rundir.ReadFile(path, maxSize)
}

// A MissingError says the top ACL file does not exist: every bridge is
// denied then, and the fix is to create it.
type MissingError struct{ Path string }

func (e *MissingError) Error() string { return "no ACL file " + e.Path }

// A DeniedError says why a bridge is refused and how to allow it.
type DeniedError struct {
	Bridge string
	Path   string // the top ACL file
	By     *Rule  // the deny rule that matched, nil when no allow matched
}

func (e *DeniedError) Error() string {
	if e.By != nil {
		return fmt.Sprintf("bridge %s denied by %s; deny wins over allow, remove that line to allow it", e.Bridge, e.By)
	}
	return fmt.Sprintf("bridge %s not allowed by %s (add the line \"allow %s\" to allow it)", e.Bridge, e.Path, e.Bridge)
}

// Check returns nil if the ACL allows bridge, else a *DeniedError: a
// bridge is allowed when an allow rule names it (or all) and no deny rule
// does.
func (a *ACL) Check(bridge string) error {
	allowed := false
	for i, r := range a.Rules {
		if r.Bridge != "all" && r.Bridge != bridge {
			continue
		}
		if !r.Allow {
			return &DeniedError{Bridge: bridge, Path: a.Path, By: &a.Rules[i]}
		}
		allowed = true
	}
	if !allowed {
		return &DeniedError{Bridge: bridge, Path: a.Path}
	}
	return nil
}

// CheckFile loads the ACL at path and checks bridge against it, with an
// error that says how to fix a missing file.
func CheckFile(path, bridge string, o Options) error {
	if err := link.ValidateName(bridge); err != nil {
		return err
	}
	a, err := Load(path, o)
	var missing *MissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("bridge %s not allowed: no ACL file %s (create it with the line \"allow %s\")", bridge, path, bridge)
	}
	if err != nil {
		return fmt.Errorf("ACL: %w", err)
	}
	return a.Check(bridge)
}
