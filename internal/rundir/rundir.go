// Package rundir is where the helpers and qemu-launch keep their locks and
// records: one directory per network namespace, under a base directory
// only the helpers' user (root) can enter.
//
//	/run/qemu-tap-helpers/            0700, owned by the helpers' user
//	    net-4026532201/               0700, one per network namespace (its inode)
//	        netns-cookie              the namespace's cookie (lifetime.go)
//	        tap.IFNAME.lock           flock'd while a helper works on IFNAME;
//	                                  left by qemu-ifup for qemu-ifdown
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
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/filekind"
)

// A Dir is the open run directory of the calling thread's network
// namespace. It is for one goroutine at a time.
type Dir struct {
	// Path is the namespace's directory, for messages.
	Path   string
	fd     int
	base   string
	cookie uint64 // of the namespace, 0 when the kernel cannot tell
}

// NetnsID is the identity of the calling thread's network namespace: the
// inode of its nsfs file, as "ip netns identify" and lsns compare them.
// The kernel reuses it once the namespace is gone (see NetnsCookie).
func NetnsID() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("network namespace identity: %w", err)
	}
	return st.Ino, nil
}

// NetnsDir is the name of the namespace's directory under the base.
func NetnsDir(id uint64) string { return "net-" + strconv.FormatUint(id, 10) }

// CookieFile holds, in a namespace's directory, the cookie of the
// namespace it was made for (NetnsCookie).
const CookieFile = "netns-cookie"

// soNetnsCookie is SO_NETNS_COOKIE from <asm-generic/socket.h> (Linux 5.14).
const soNetnsCookie = 71

// NetnsCookie is the cookie of the calling thread's network namespace: a
// number the kernel gives each namespace it creates and never gives again
// until it reboots, where the inode is reused. 0 when the kernel is older
// than 5.14 and cannot tell.
func NetnsCookie() uint64 {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	return socketCookie(fd)
}

// socketCookie is the cookie of the namespace of the socket fd.
func socketCookie(fd int) uint64 {
	var c uint64
	n := uint32(unsafe.Sizeof(c))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, soNetnsCookie,
		uintptr(unsafe.Pointer(&c)), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 || n != uint32(unsafe.Sizeof(c)) {
		return 0
	}
	return c
}

// Open opens (creating as needed) the directory of the calling thread's
// network namespace under base. base must be a directory of this process's
// effective user, not writable by anyone else; one that is open to
// others is tightened to 0700.
//
// The directory is named after the namespace's inode, which the kernel
// reuses once the namespace is gone; so it holds the namespace's cookie
// too (CookieFile), and one whose cookie is another namespace's was left
// by a namespace gone: it is cleared away, never used (see replaceStale).
func Open(base string) (*Dir, error) {
	id, err := NetnsID()
	if err != nil {
		return nil, err
	}
	d := &Dir{Path: filepath.Join(base, NetnsDir(id)), base: base, cookie: NetnsCookie()}
	if err := d.open(); err != nil {
		return nil, err
	}
	return d, nil
}

// Close closes the directory, and removes it first when nothing in it is
// in use any more (see removeIfDone).
func (d *Dir) Close() error {
	d.removeIfDone()
	return unix.Close(d.fd)
}

// open opens d's directory into d.fd: creating it when missing, with its
// cookie, and replacing one made for another namespace.
func (d *Dir) open() error {
	bfd, err := openOwnDir(unix.AT_FDCWD, d.base, true)
	if err != nil {
		return err
	}
	defer unix.Close(bfd)
	name := filepath.Base(d.Path)
	// Each turn either finds the directory ours or changes something
	// (creates it, clears a stale one); racing helpers settle at once.
	for range 8 {
		fd, err := openDir(bfd, name)
		if errors.Is(err, unix.ENOENT) {
			if err := d.create(bfd, name); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := checkOwnDir(fd, d.Path); err != nil {
			unix.Close(fd)
			return err
		}
		if c, ok := readCookie(fd); ok && c == d.cookie {
			d.fd = fd
			return nil
		}
		err = d.replaceStale(bfd, name, fd)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("run directory %s: keeps changing under this process", d.Path)
}

// reopen opens d's directory again, after it was removed (removeIfDone).
func (d *Dir) reopen() error {
	if c := NetnsCookie(); c != d.cookie {
		return fmt.Errorf("run directory %s: used from another network namespace", d.Path)
	}
	unix.Close(d.fd)
	d.fd = -1
	return d.open()
}

// create makes the namespace's directory, name under bfd, whole: made
// under a temporary name with its cookie in it, then renamed into place
// unless another helper has made it meanwhile. So a directory without a
// cookie is never one this version is making.
func (d *Dir) create(bfd int, name string) error {
	// Unique to this call: helpers of one process may race too.
	tmp := ".new." + name + "." + strconv.Itoa(os.Getpid()) + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := unix.Mkdirat(bfd, tmp, 0o700); err != nil {
		return fmt.Errorf("run directory %s: %w", d.Path, err)
	}
	err := writeCookie(bfd, tmp, d.cookie)
	if err == nil {
		err = unix.Renameat2(bfd, tmp, bfd, name, unix.RENAME_NOREPLACE)
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EEXIST) {
			err = nil // another helper's: use that one
		}
	}
	removeTree(bfd, tmp)
	if err != nil {
		return fmt.Errorf("run directory %s: %w", d.Path, err)
	}
	return nil
}

// openOwnDir opens dir (relative to at), creating it 0700 when missing,
// and checks that it is a directory of ours that nobody else may write.
func openOwnDir(at int, dir string, parents bool) (int, error) {
	fd, err := openDir(at, dir)
	if errors.Is(err, unix.ENOENT) {
		if parents {
			if perr := os.MkdirAll(filepath.Dir(dir), 0o755); perr != nil {
				return -1, fmt.Errorf("run directory %s: %w", dir, perr)
			}
		}
		if merr := unix.Mkdirat(at, dir, 0o700); merr != nil && !errors.Is(merr, unix.EEXIST) {
			return -1, fmt.Errorf("run directory %s: %w", dir, merr)
		}
		fd, err = openDir(at, dir)
	}
	if err != nil {
		return -1, err
	}
	if err := checkOwnDir(fd, dir); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openDir opens the directory dir under at without following a symlink.
// A missing one gives an error satisfying errors.Is(err, unix.ENOENT).
func openDir(at int, dir string) (int, error) {
	fd, err := unix.Openat(at, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
		return -1, fmt.Errorf("run directory %s: not a directory (a symlink?)", dir)
	}
	return -1, fmt.Errorf("run directory %s: %w", dir, err)
}

// checkOwnDir checks that the directory fd (dir, for messages) is ours and
// that nobody else may write it, tightening an open mode to 0700.
func checkOwnDir(fd int, dir string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("run directory %s: %w", dir, err)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("run directory %s: owned by uid %d, not %d: refusing a directory another user could have prepared", dir, st.Uid, os.Geteuid())
	}
	if st.Mode&0o077 != 0 {
		if err := unix.Fchmod(fd, 0o700); err != nil {
			return fmt.Errorf("run directory %s: mode %#o: %w", dir, st.Mode&0o777, err)
		}
	}
	return nil
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
	return openAt(d.fd, d.Path, name, flags)
}

// openAt opens name under the directory fd (dir, for messages) as
// openFile does.
func openAt(fd int, dir, name string, flags int) (*os.File, error) {
	path := filepath.Join(dir, name)
	nfd, err := unix.Openat(fd, name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s: a symlink: %w", path, err)
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f, err := newFile(nfd, path)
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
		return nil, fmt.Errorf("%s: not a regular file but %s", path, filekind.Of(fi.Mode()))
	}
	return f, nil
}
