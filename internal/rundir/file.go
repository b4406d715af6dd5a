package rundir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/filekind"
)

// A TooBigError says a file is larger than its reader allows.
type TooBigError struct {
	Path  string
	Limit int64
}

func (e *TooBigError) Error() string {
	return fmt.Sprintf("%s: larger than %d bytes", e.Path, e.Limit)
}

// ReadFile reads path, following symlinks (the config is the
// administrator's to place), but only a regular file, without blocking
// on a FIFO or a device, and at most limit bytes: a bigger file is an
// error, found before reading it whole. A missing file gives an error
// satisfying errors.Is(err, fs.ErrNotExist).
func ReadFile(path string, limit int64) ([]byte, error) {
	return ReadFileChecked(path, limit, nil)
}

// ReadFileChecked is ReadFile that also runs check, when not nil, on the
// open file's FileInfo before reading it: a file refused for who owns it
// or who may write it is judged on the file read, not on a path that may
// change in between.
func ReadFileChecked(path string, limit int64, check func(fs.FileInfo) error) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f, err := newFile(fd, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file but %s", path, filekind.Of(fi.Mode()))
	}
	if check != nil {
		if err := check(fi); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return readBounded(f, path, limit)
}

// readBounded reads at most limit bytes of f; one byte more is an error.
func readBounded(f *os.File, path string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &TooBigError{Path: path, Limit: limit}
	}
	return data, nil
}

// ReadFile reads name in d: a regular file, not through a symlink, at
// most limit bytes. A missing file gives fs.ErrNotExist.
func (d *Dir) ReadFile(name string, limit int64) ([]byte, error) {
	f, err := d.openFile(name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(f, f.Name(), limit)
}

// WriteFile replaces name in d with data atomically (a reader sees the old
// file or the new one, never half of one), mode 0600.
func (d *Dir) WriteFile(name string, data []byte) error {
	if err := validFileName(name); err != nil {
		return err
	}
	var tmp string
	var f *os.File
	for i := 0; ; i++ {
		tmp = "." + name + "." + strconv.Itoa(os.Getpid()) + "." + strconv.Itoa(i)
		fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) && i < 100 {
			continue
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(d.Path, name), err)
		}
		f = os.NewFile(uintptr(fd), filepath.Join(d.Path, tmp))
		break
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	err := errors.Join(werr, cerr)
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, name)
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return fmt.Errorf("write %s: %w", filepath.Join(d.Path, name), err)
	}
	return nil
}

// Remove removes name from d; a missing file is not an error.
func (d *Dir) Remove(name string) error {
	if err := validFileName(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", filepath.Join(d.Path, name), err)
	}
	return nil
}

// newFile wraps fd, opened with O_NONBLOCK so that opening a FIFO cannot
// hang, in an *os.File, after clearing that flag: os.NewFile registers a
// non-blocking fd with the runtime's poller, which starts it (an epoll
// instance, an eventfd) for a file that cannot use it, a cost a helper
// living a few milliseconds notices. Callers check the file is regular
// before reading it, so a FIFO is never read. fd is closed on error.
func newFile(fd int, path string) (*os.File, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
