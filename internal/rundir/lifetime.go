package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A namespace's directory lives as long as something in it is in use, and
// is never used by another namespace:
//
//   - It is made whole (Dir.create): under a temporary name, with the
//     namespace's cookie in CookieFile, then renamed into place.
//   - A directory whose cookie is not this namespace's was left by a
//     namespace gone whose inode this one reuses: it is renamed out of
//     the way and removed, under a lock on the base directory, so that two
//     helpers never both clear it or clear a new one (Dir.replaceStale).
//   - The last user out removes it (Dir.removeIfDone), holding the
//     directory's flock exclusively; a helper creating a lock file holds
//     it shared meanwhile (Dir.tryLock). So no lock file appears while the
//     remover looks, and one created afterwards fails with ENOENT in the
//     removed directory, which the helper then opens again. The remover
//     moves it out of the way whole, cookie and all, before emptying it,
//     so that no helper ever finds a directory of its own without its
//     cookie. Every other
//     file is written by a holder of a lock in the directory, which keeps
//     it in use.

// readCookie reads the cookie of the directory fd; ok is false when it
// has none (made by a version without cookies) or a bad one.
func readCookie(fd int) (c uint64, ok bool) {
	f, err := openAt(fd, "", CookieFile, unix.O_RDONLY)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	b, err := readBounded(f, CookieFile, 32)
	if err != nil {
		return 0, false
	}
	c, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return c, err == nil
}

// writeCookie writes cookie into the directory dir under at, replacing
// any cookie there in one step.
func writeCookie(at int, dir string, cookie uint64) error {
	fd, err := openDir(at, dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	tmp := "." + CookieFile + "." + strconv.Itoa(os.Getpid())
	unix.Unlinkat(fd, tmp, 0)
	f, err := unix.Openat(fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = unix.Write(f, []byte(strconv.FormatUint(cookie, 10)+"\n"))
	if cerr := unix.Close(f); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(fd, tmp, fd, CookieFile)
	}
	if err != nil {
		unix.Unlinkat(fd, tmp, 0)
	}
	return err
}

// replaceStale deals with the directory name under bfd, open as fd, whose
// cookie is missing or not this namespace's. Under the base directory's
// lock, and if name is still fd's directory and still not ours:
//
//   - with no cookie (made by an older version) and a lock in it held, it
//     is this namespace's (a held lock proves the namespace alive, and a
//     live namespace's inode is its own) and gets the cookie;
//   - else it was left by a namespace gone: renamed out of the way, then
//     removed with all it holds. Nothing in it is trusted.
func (d *Dir) replaceStale(bfd int, name string, fd int) error {
	if err := unix.Flock(bfd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("run directory %s: lock %s: %w", d.Path, d.base, err)
	}
	defer unix.Flock(bfd, unix.LOCK_UN)
	var was, now unix.Stat_t
	if unix.Fstat(fd, &was) != nil || unix.Fstatat(bfd, name, &now, unix.AT_SYMLINK_NOFOLLOW) != nil ||
		was.Ino != now.Ino || was.Dev != now.Dev {
		return nil // replaced meanwhile: look again
	}
	c, ok := readCookie(fd)
	switch {
	case ok && c == d.cookie:
		return nil
	case !ok && anyLockHeld(fd):
		if err := writeCookie(bfd, name, d.cookie); err != nil {
			return fmt.Errorf("run directory %s: %w", d.Path, err)
		}
		return nil
	}
	trash := ".stale." + name + "." + strconv.Itoa(os.Getpid())
	removeTree(bfd, trash)
	if err := unix.Renameat(bfd, name, bfd, trash); errors.Is(err, unix.ENOENT) {
		return nil // removed by its last user meanwhile: look again
	} else if err != nil {
		return fmt.Errorf("run directory %s: left by a namespace gone: move it away: %w", d.Path, err)
	}
	if err := removeTree(bfd, trash); err != nil {
		return fmt.Errorf("run directory %s: left by a namespace gone: %w", d.Path, err)
	}
	return nil
}

// anyLockHeld reports whether a process holds a lock file of the
// directory fd.
func anyLockHeld(fd int) bool {
	names, err := dirNames(fd)
	if err != nil {
		return false
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".lock") {
			continue
		}
		f, err := openAt(fd, "", n, unix.O_RDONLY)
		if err != nil {
			continue
		}
		busy := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
		f.Close()
		if busy {
			return true
		}
	}
	return false
}

// removeIfDone removes d's directory when nothing in it is in use: no
// lock file held or kept for a tap that exists (Lock.Leave), no record of
// a live launcher or written by hand. What is left over (lock files and
// temporary files of killed processes, stale records and their marks)
// goes with it. Any doubt keeps the directory. It runs as its namespace's
// helpers close it, and only from that namespace: the taps it looks up
// are that namespace's.
func (d *Dir) removeIfDone() {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(s)
	if socketCookie(s) != d.cookie {
		return
	}
	if unix.Flock(d.fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // a helper is taking a lock: it will close the directory later
	}
	defer unix.Flock(d.fd, unix.LOCK_UN)
	// Listing a directory removed since this process opened it fails
	// (ENOENT): then the one at d.Path, if any, is another's, and must
	// not be moved away below with its holders' locks.
	names, err := dirNames(d.fd)
	if err != nil {
		return
	}
	var left []string
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	for _, n := range names {
		switch {
		case n == CookieFile:
		case strings.HasPrefix(n, "."), strings.HasSuffix(n, ".up"):
			left = append(left, n)
		case strings.HasSuffix(n, ".lock"):
			f, err := d.openFile(n, unix.O_RDONLY)
			if err != nil {
				return
			}
			if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
				f.Close()
				return
			}
			// Held until it is removed: nobody takes it meanwhile.
			held = append(held, f)
			if tap, ok := strings.CutPrefix(strings.TrimSuffix(n, ".lock"), "tap."); ok && ifaceExists(s, tap) {
				return // kept for the tap's qemu-ifdown
			}
			left = append(left, n)
		case strings.HasSuffix(n, ".conf"):
			if !d.recordIsStale(n) {
				return
			}
			left = append(left, n)
		default:
			return
		}
	}
	for _, n := range left {
		unix.Unlinkat(d.fd, n, 0)
	}
	// Moved out of the way whole, cookie and all, before it is emptied:
	// a helper opening it meanwhile never finds it without its cookie,
	// which would make it look stale.
	gone := filepath.Join(d.base, ".gone."+filepath.Base(d.Path)+"."+strconv.Itoa(os.Getpid())+"."+strconv.FormatInt(time.Now().UnixNano(), 36))
	if unix.Renameat(unix.AT_FDCWD, d.Path, unix.AT_FDCWD, gone) != nil {
		return
	}
	unix.Unlinkat(d.fd, CookieFile, 0)
	unix.Rmdir(gone)
}

// recordIsStale reports whether the record file name was signed by a
// launcher that is gone.
func (d *Dir) recordIsStale(name string) bool {
	data, err := d.ReadFile(name, MaxRecord)
	if err != nil {
		return false
	}
	pid, start, ok := owner(data)
	if !ok {
		return false // written by hand: kept
	}
	st, err := startTime(pid)
	return err != nil || st != start
}

// ifaceExists reports whether the interface name exists in the namespace
// of the socket s.
func ifaceExists(s int, name string) bool {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return false
	}
	return unix.IoctlIfreq(s, unix.SIOCGIFINDEX, ifr) == nil
}

// dirNames lists the directory fd.
func dirNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	return names, nil
}

// removeTree removes the directory name under at and the files in it
// (one level: the run directory holds no subdirectories of its own).
// A missing one is not an error.
func removeTree(at int, name string) error {
	fd, err := openDir(at, name)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := dirNames(fd)
	for _, n := range names {
		if unix.Unlinkat(fd, n, 0) != nil {
			unix.Unlinkat(fd, n, unix.AT_REMOVEDIR)
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(at, name, unix.AT_REMOVEDIR)
}
