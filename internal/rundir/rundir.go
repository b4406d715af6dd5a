// Package rundir is where the helpers and qemu-launch keep their locks and
// records: one directory per network namespace, under a base directory
// only the helpers' user (root) can enter.
//
//	/run/qemu-tap-helpers/            0700, owned by the helpers' user
//	    net-4026532201/               0700, one per network namespace (its inode)
//	        tap.IFNAME.lock           flock'd while a helper works on IFNAME
//	        vm.NAME.lock              flock'd while qemu-launch runs VM NAME
//	        IFNAME.conf               qemu-launch's record for qemu-ifup
//
// Interface names are per namespace, so are locks and records: a VM in one
// namespace never reads another's record for the same tap name. Another
// local user can neither create nor hold anything in there, so it can
// neither block a helper nor plant a record. Files are opened relative to
// the checked directory without following symlinks, must be regular files,
// and are opened non-blocking (a FIFO is an error, not a hang). Locks are
// flock(2) locks: they die with the process, however it dies.
package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A Dir is the open run directory of the calling thread's network
// namespace.
type Dir struct {
	// Path is the namespace's directory, for messages.
	Path string
	fd   int
}

// NetnsID is the identity of the calling thread's network namespace: the
// inode of its nsfs file, as "ip netns identify" and lsns compare them.
func NetnsID() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("network namespace identity: %w", err)
	}
	return st.Ino, nil
}

// NetnsDir is the name of the namespace's directory under the base.
func NetnsDir(id uint64) string { return "net-" + strconv.FormatUint(id, 10) }

// Open opens (creating as needed) the directory of the calling thread's
// network namespace under base. base must be a directory of this process's
// effective user, not writable by anyone else; one that is open to
// others is tightened to 0700.
func Open(base string) (*Dir, error) {
	id, err := NetnsID()
	if err != nil {
		return nil, err
	}
	bfd, err := openOwnDir(unix.AT_FDCWD, base, true)
	if err != nil {
		return nil, err
	}
	defer unix.Close(bfd)
	name := NetnsDir(id)
	path := filepath.Join(base, name)
	fd, err := openOwnDir(bfd, name, false)
	if err != nil {
		return nil, err
	}
	return &Dir{Path: path, fd: fd}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// openOwnDir opens dir (relative to at), creating it 0700 when missing,
// and checks that it is a directory of ours that nobody else may write.
func openOwnDir(at int, dir string, parents bool) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(at, dir, flags, 0)
	if errors.Is(err, unix.ENOENT) {
		if parents {
			if perr := os.MkdirAll(filepath.Dir(dir), 0o755); perr != nil {
				return -1, fmt.Errorf("run directory %s: %w", dir, perr)
			}
		}
		if merr := unix.Mkdirat(at, dir, 0o700); merr != nil && !errors.Is(merr, unix.EEXIST) {
			return -1, fmt.Errorf("run directory %s: %w", dir, merr)
		}
		fd, err = unix.Openat(at, dir, flags, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("run directory %s: not a directory (a symlink?)", dir)
		}
		return -1, fmt.Errorf("run directory %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("run directory %s: %w", dir, err)
	}
	if int(st.Uid) != os.Geteuid() {
		unix.Close(fd)
		return -1, fmt.Errorf("run directory %s: owned by uid %d, not %d: refusing a directory another user could have prepared", dir, st.Uid, os.Geteuid())
	}
	if st.Mode&0o077 != 0 {
		if err := unix.Fchmod(fd, 0o700); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("run directory %s: mode %#o: %w", dir, st.Mode&0o777, err)
		}
	}
	return fd, nil
}

// ValidFileName reports whether name can be a file name in the directory:
// one path element, not hidden (temporary files start with a dot).
func validFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") || len(name) > 255 {
		return fmt.Errorf("bad file name %q in the run directory", name)
	}
	return nil
}

// openFile opens name under d without following a symlink and without
// blocking on a FIFO, and checks that it is a regular file.
func (d *Dir) openFile(name string, flags int) (*os.File, error) {
	if err := validFileName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(d.Path, name)
	fd, err := unix.Openat(d.fd, name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s: a symlink: %w", path, err)
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f, err := newFile(fd, path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file but %s", path, kind(fi.Mode()))
	}
	return f, nil
}
