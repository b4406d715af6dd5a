package trust_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/trust"
)

func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		nstest.Skip(t, "test needs root: it gives files to root and to nobody")
	}
	nobody := nstest.Nobody(t)
	mk := func(dir string) func(string) string {
		return func(name string) string { return filepath.Join(dir, name) }
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, in func(string) string) string // returns the path to check
		want  string                                            // "" trusted, else the error with DIR for the test's directory
	}{
		{"root's 0644 file", func(t *testing.T, in func(string) string) string {
			return file(t, in("f"), 0o644, 0)
		}, ""},
		{"root's 0755 script", func(t *testing.T, in func(string) string) string {
			return file(t, in("f"), 0o755, 0)
		}, ""},
		{"group-owned, not group-writable", func(t *testing.T, in func(string) string) string {
			p := file(t, in("f"), 0o640, 0)
			must(t, os.Chown(p, 0, int(nobody.Gid)))
			return p
		}, ""},
		{"a user's file", func(t *testing.T, in func(string) string) string {
			return file(t, in("f"), 0o644, nobody.Uid)
		}, "DIR/f: not trusted: owned by uid UID (nobody) with mode 0644; " + rule + " (fix: chown root:root DIR/f)"},
		{"group-writable", func(t *testing.T, in func(string) string) string {
			return file(t, in("f"), 0o664, 0)
		}, "DIR/f: not trusted: owned by root with mode 0664; " + rule + " (fix: chmod go-w DIR/f)"},
		{"a user's world-writable file", func(t *testing.T, in func(string) string) string {
			return file(t, in("f"), 0o666, nobody.Uid)
		}, "DIR/f: not trusted: owned by uid UID (nobody) with mode 0666; " + rule + " (fix: chown root:root DIR/f; chmod go-w DIR/f)"},
		{"in a user's directory", func(t *testing.T, in func(string) string) string {
			d := dir(t, in("d"), 0o755, nobody.Uid)
			return file(t, filepath.Join(d, "f"), 0o644, 0)
		}, "DIR/d/f: not trusted: its directory DIR/d is owned by uid UID (nobody) with mode 0755; " + rule + " (fix: chown root:root DIR/d)"},
		{"in a world-writable sticky directory", func(t *testing.T, in func(string) string) string {
			d := dir(t, in("d"), 0o1777, 0)
			return file(t, filepath.Join(d, "f"), 0o644, 0)
		}, "DIR/d/f: not trusted: its directory DIR/d is owned by root with mode 1777; " + rule + " (fix: move it to a directory that only root may write)"},
		{"deep under a group-writable directory", func(t *testing.T, in func(string) string) string {
			d := dir(t, in("d"), 0o775, 0)
			e := dir(t, filepath.Join(d, "e"), 0o755, 0)
			return file(t, filepath.Join(e, "f"), 0o644, 0)
		}, "DIR/d/e/f: not trusted: its directory DIR/d is owned by root with mode 0775; " + rule + " (fix: chmod go-w DIR/d)"},
		{"symlink to a file in a user's directory", func(t *testing.T, in func(string) string) string {
			d := dir(t, in("d"), 0o755, nobody.Uid)
			f := file(t, filepath.Join(d, "f"), 0o644, 0)
			must(t, os.Symlink(f, in("link")))
			return in("link")
		}, "DIR/link: not trusted: its directory DIR/d is owned by uid UID (nobody) with mode 0755; " + rule + " (fix: chown root:root DIR/d)"},
		{"relative symlink through a trusted directory", func(t *testing.T, in func(string) string) string {
			d := dir(t, in("d"), 0o755, 0)
			file(t, filepath.Join(d, "f"), 0o644, 0)
			must(t, os.Symlink("d/../d/f", in("link")))
			return in("link")
		}, ""},
		{"symlink, then .., as the kernel takes it", func(t *testing.T, in func(string) string) string {
			d := dir(t, in("d"), 0o755, nobody.Uid)
			dir(t, filepath.Join(d, "e"), 0o755, 0)
			file(t, filepath.Join(d, "f"), 0o644, 0)
			file(t, in("f"), 0o644, 0)
			must(t, os.Symlink("d/e", in("link")))
			// The kernel reads DIR/d/f, not DIR/f.
			return in("link") + "/../f"
		}, "DIR/link/../f: not trusted: its directory DIR/d is owned by uid UID (nobody) with mode 0755; " + rule + " (fix: chown root:root DIR/d)"},
		{"symlink to a user's file", func(t *testing.T, in func(string) string) string {
			file(t, in("f"), 0o644, nobody.Uid)
			must(t, os.Symlink("f", in("link")))
			return in("link")
		}, "DIR/link: not trusted: it leads to DIR/f, owned by uid UID (nobody) with mode 0644; " + rule + " (fix: chown root:root DIR/f)"},
		{"a directory", func(t *testing.T, in func(string) string) string {
			return dir(t, in("d"), 0o755, 0)
		}, "DIR/d: not a regular file but a directory"},
		{"missing", func(t *testing.T, in func(string) string) string {
			return in("none")
		}, "DIR/none: lstat DIR/none: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := nstest.TrustedDir(t)
			path := tt.setup(t, mk(d))
			err := trust.Check(path)
			got := ""
			if err != nil {
				got = strings.NewReplacer(d, "DIR", " "+itoa(nobody.Uid)+" ", " UID ").Replace(err.Error())
			}
			if got != tt.want {
				t.Errorf("Check(%s) = %q\nwant %q", path, got, tt.want)
			}
			var u *trust.UntrustedError
			if tt.want != "" && strings.Contains(tt.want, "not trusted") && !errors.As(err, &u) {
				t.Errorf("error %v is not an *UntrustedError", err)
			}
		})
	}
}

const rule = "root trusts a file only if root owns it and every directory on its path and no one else may write them"

// A relative path is taken from the working directory, whose directories
// are checked too: /tmp, where anyone may write, is refused.
func TestCheckRelativeUnderTmp(t *testing.T) {
	d := t.TempDir()
	f := filepath.Join(d, "f")
	must(t, os.WriteFile(f, nil, 0o644))
	t.Chdir(d)
	if err := trust.Check("f"); err == nil || !strings.Contains(err.Error(), "f: not trusted: its directory ") {
		t.Errorf(`Check("f") in %s = %v, want the refusal of a directory on its path`, d, err)
	}
}

func file(t *testing.T, p string, mode os.FileMode, uid uint32) string {
	t.Helper()
	must(t, os.WriteFile(p, []byte("x\n"), 0o600))
	must(t, os.Chmod(p, mode))
	must(t, os.Chown(p, int(uid), 0))
	return p
}

func dir(t *testing.T, p string, mode os.FileMode, uid uint32) string {
	t.Helper()
	must(t, os.Mkdir(p, 0o700))
	must(t, syscall.Chmod(p, uint32(mode))) // os.Chmod drops 0o1000
	must(t, os.Chown(p, int(uid), 0))
	return p
}

func itoa(u uint32) string { return strconv.FormatUint(uint64(u), 10) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
