// Package trust decides whether root may act on a file someone names: read
// rules from it or run it. A file is trusted when root owns it and no one
// else may write it, and the same holds for every directory on the way to
// it, as OpenSSH's StrictModes and sudo's checks of sudoers demand: whoever
// may write a directory on the path may put another file in its place.
//
// A world-writable directory is refused even with the sticky bit (/tmp):
// anyone may create a name there before root does, and the rule stays one
// that an administrator can check with ls -ld. Symlinks are followed, each
// one found in a trusted directory, and the directories of their targets
// are checked in turn.
package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/filekind"
)

// maxLinks bounds the symlinks followed, as the kernel's own 40.
const maxLinks = 40

// Check returns nil when root may trust the file at path, else an error
// naming the file or directory at fault, its owner and mode, and the fix;
// it is an *UntrustedError when ownership or mode is at fault. path must
// lead to a regular file; a relative path is taken from the working
// directory, whose directories are checked too.
func Check(path string) error {
	err := check(path)
	var u *UntrustedError
	if err == nil || errors.As(err, &u) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

func check(path string) error {
	// Not filepath.Abs, which cleans "link/.." away: the kernel
	// follows link first, and so must the check.
	abs := path
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		abs = wd + "/" + path
	}
	fi, err := os.Lstat("/")
	if err != nil {
		return err
	}
	if err := judge(path, "/", fi); err != nil {
		return err
	}
	dir, rest, links := "/", split(abs), 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			// dir has no symlink in it: its parent is its prefix,
			// checked already.
			dir = filepath.Dir(dir)
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// The link sits in dir, which only root may write:
			// only root could have made or may change it.
			if links++; links > maxLinks {
				return syscall.ELOOP
			}
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				dir = "/"
			}
			rest = append(split(target), rest...)
			continue
		}
		if len(rest) > 0 && !fi.IsDir() {
			return fmt.Errorf("%s: %w", p, syscall.ENOTDIR)
		}
		if len(rest) == 0 && !fi.Mode().IsRegular() {
			return errors.New("not a regular file but " + filekind.Of(fi.Mode()))
		}
		if err := judge(path, p, fi); err != nil {
			return err
		}
		dir = p
	}
	return nil
}

func split(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

// judge checks one file or directory p on the way to path.
func judge(path, p string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner to check", p)
	}
	if st.Uid == 0 && st.Mode&0o022 == 0 {
		return nil
	}
	return &UntrustedError{Path: path, At: p, Dir: fi.IsDir(), UID: st.Uid, Mode: st.Mode & 0o7777}
}

// An UntrustedError says that someone other than root owns, or may write,
// a file or a directory on its path.
type UntrustedError struct {
	Path string // the file checked
	At   string // the file or directory at fault: Path or one on its way
	Dir  bool   // At is a directory
	UID  uint32 // At's owner
	Mode uint32 // At's permission bits, with the sticky, setuid and setgid bits
}

// Owner names the owner of At: "root", "uid 1000 (alice)" or "uid 1000".
func (e *UntrustedError) Owner() string {
	if e.UID == 0 {
		return "root"
	}
	id := strconv.FormatUint(uint64(e.UID), 10)
	if u, err := user.LookupId(id); err == nil {
		return "uid " + id + " (" + u.Username + ")"
	}
	return "uid " + id
}

func (e *UntrustedError) Error() string {
	what := ""
	switch {
	case e.Dir:
		what = "its directory " + e.At + " is "
	case e.At != e.Path:
		what = "it leads to " + e.At + ", "
	}
	var fix []string
	if e.Dir && e.Mode&0o1002 == 0o1002 {
		// chmod go-w /tmp would break every user of it.
		fix = append(fix, "move it to a directory that only root may write")
	} else {
		if e.UID != 0 {
			fix = append(fix, "chown root:root "+e.At)
		}
		if e.Mode&0o022 != 0 {
			fix = append(fix, "chmod go-w "+e.At)
		}
	}
	return fmt.Sprintf("%s: not trusted: %sowned by %s with mode %04o; root trusts a file only if root owns it and every directory on its path and no one else may write them (fix: %s)",
		e.Path, what, e.Owner(), e.Mode, strings.Join(fix, "; "))
}
