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

// A Lock is an flock(2) lock on a file of the run directory, holding the
// holder's pid for messages.
type Lock struct {
	d    *Dir
	name string
	f    *os.File
}

// A BusyError says another process holds a lock.
type BusyError struct {
	Path string
	Pid  int // 0 when the holder has not written its pid yet
}

func (e *BusyError) Error() string {
	if e.Pid > 0 {
		return fmt.Sprintf("%s is held by pid %d", e.Path, e.Pid)
	}
	return e.Path + " is held by another process"
}

// TapLock and VMLock name the lock files.
func TapLock(ifname string) string { return "tap." + ifname + ".lock" }

// VMLock names the lock of the VM called name: safe characters as they
// are, the others escaped as %XX, a long name by its hash.
func VMLock(name string) string {
	var b strings.Builder
	for _, c := range []byte(name) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && b.Len() > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	s := b.String()
	if len(s) > 200 {
		s = s[:180] + "%" + strconv.FormatUint(fnv64(name), 16)
	}
	return "vm." + s + ".lock"
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Lock takes the lock called name, waiting up to wait for another holder
// to release it (0: try once). A lock still held then gives a *BusyError.
func (d *Dir) Lock(name string, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		l, err := d.tryLock(name)
		if err == nil {
			return l, nil
		}
		var busy *BusyError
		if !errors.As(err, &busy) || !time.Now().Before(deadline) {
			return nil, err
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

func (d *Dir) tryLock(name string) (*Lock, error) {
	for {
		// Shared while the lock file is opened, perhaps created, and
		// locked: the directory is not removed meanwhile (removeIfDone).
		if err := unix.Flock(d.fd, unix.LOCK_SH); err != nil {
			return nil, fmt.Errorf("lock %s: %w", d.Path, err)
		}
		l, err := d.lockFile(name)
		unix.Flock(d.fd, unix.LOCK_UN)
		switch {
		case errors.Is(err, errAgain):
			continue
		case errors.Is(err, errDirGone):
			// Removed by its last user since this process opened it.
			if err := d.reopen(); err != nil {
				return nil, err
			}
			continue
		}
		return l, err
	}
}

var (
	errAgain   = errors.New("lock file removed meanwhile")
	errDirGone = errors.New("run directory removed meanwhile")
)

// lockFile opens, creating it when missing, and locks the lock file name.
func (d *Dir) lockFile(name string) (*Lock, error) {
	f, err := d.openFile(name, unix.O_RDWR|unix.O_CREAT)
	if errors.Is(err, unix.ENOENT) {
		return nil, errDirGone
	}
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid := readPid(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &BusyError{Path: filepath.Join(d.Path, name), Pid: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", filepath.Join(d.Path, name), err)
	}
	// The holder before us may have removed the file on release
	// after we opened it: a lock on a removed file locks nothing.
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil ||
		unix.Fstatat(d.fd, name, &now, unix.AT_SYMLINK_NOFOLLOW) != nil ||
		held.Ino != now.Ino || held.Dev != now.Dev {
		f.Close()
		return nil, errAgain
	}
	// Write the pid over whatever a holder left, then cut the rest:
	// truncating to zero first would make ext4 (auto_da_alloc) flush
	// the file to disk when it is closed, a disk write per run where
	// the run directory is not on a tmpfs.
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if _, err := f.WriteAt(pid, 0); err == nil && held.Size > int64(len(pid)) {
		f.Truncate(int64(len(pid)))
	}
	return &Lock{d: d, name: name, f: f}, nil
}

// readPid reads the pid a holder wrote, 0 if none.
func readPid(f *os.File) int {
	var b [24]byte
	n, _ := f.ReadAt(b[:], 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Release removes the lock file and releases the lock. Removing first,
// while still holding it, keeps the directory clean without a race: a
// waiter that opened the old file finds it removed and tries again.
func (l *Lock) Release() {
	unix.Unlinkat(l.d.fd, l.name, 0)
	l.f.Close()
}

// Leave releases the lock and leaves its file for the next holder, who
// then takes the lock without a new inode: qemu-ifup leaves a tap's lock
// for its qemu-ifdown, which must detach the tap even when the run
// directory's file system has no inode left. A file left for a tap that
// is gone is removed with the directory (removeIfDone).
func (l *Lock) Leave() {
	l.f.Close()
}
