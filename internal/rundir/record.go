package rundir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxRecord bounds a record's size: records hold a few short lines.
const MaxRecord = 64 << 10

// ownerPrefix starts the last line of a record qemu-launch wrote: a
// comment to the record's parser, naming the launcher so that a record it
// left behind when killed is recognised.
const ownerPrefix = "# qemu-launch pid="

// RecordFile names the record of the tap ifname.
func RecordFile(ifname string) string { return ifname + ".conf" }

// RecordPath is where the record of ifname is, for messages.
func (d *Dir) RecordPath(ifname string) string {
	return filepath.Join(d.Path, RecordFile(ifname))
}

// WriteRecord stores data as the record of ifname, signed with this
// process's pid and start time.
func (d *Dir) WriteRecord(ifname string, data []byte) error {
	start, err := startTime(os.Getpid())
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%s%d start=%d\n", ownerPrefix, os.Getpid(), start)
	return d.WriteFile(RecordFile(ifname), b.Bytes())
}

// A StaleError says a record's launcher is gone; the record was removed.
type StaleError struct {
	Path string
	Pid  int
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("removed stale record %s: its qemu-launch (pid %d) is gone", e.Path, e.Pid)
}

// ReadRecord returns the record of ifname, nil if there is none. A record
// whose launcher has exited (killed before it could clean up) is removed
// and reported through stale, and ReadRecord returns nil for it.
func (d *Dir) ReadRecord(ifname string) (data []byte, stale *StaleError, err error) {
	data, err = d.ReadFile(RecordFile(ifname), MaxRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	pid, start, ok := owner(data)
	if !ok {
		return data, nil, nil // written by hand: nobody to outlive
	}
	if st, err := startTime(pid); err == nil && st == start {
		return data, nil, nil
	}
	if err := d.Remove(RecordFile(ifname)); err != nil {
		return nil, nil, err
	}
	return nil, &StaleError{Path: d.RecordPath(ifname), Pid: pid}, nil
}

// RecordIsMine reports whether the record of ifname exists and was
// written by this process.
func (d *Dir) RecordIsMine(ifname string) (bool, error) {
	data, err := d.ReadFile(RecordFile(ifname), MaxRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	pid, start, ok := owner(data)
	if !ok || pid != os.Getpid() {
		return false, nil
	}
	mine, err := startTime(pid)
	return err == nil && mine == start, nil
}

// RecordOwner returns the pid of the live qemu-launch that wrote the
// record of ifname; 0 when there is no record, its launcher is gone, or
// nobody signed it.
func (d *Dir) RecordOwner(ifname string) int {
	data, err := d.ReadFile(RecordFile(ifname), MaxRecord)
	if err != nil {
		return 0
	}
	pid, start, ok := owner(data)
	if !ok {
		return 0
	}
	if st, err := startTime(pid); err != nil || st != start {
		return 0
	}
	return pid
}

// RemoveRecord removes the record of ifname and its up mark; a missing
// one is not an error.
func (d *Dir) RemoveRecord(ifname string) error {
	return errors.Join(d.Remove(RecordFile(ifname)), d.Remove(upFile(ifname)))
}

// upFile names the mark qemu-ifup leaves once it has configured a tap
// that has a record: it tells the launcher that QEMU got as far as the
// up-script for that tap, so the tap is its VM's to take down.
func upFile(ifname string) string { return ifname + ".up" }

// MarkUp leaves the up mark of ifname.
func (d *Dir) MarkUp(ifname string) error {
	return d.WriteFile(upFile(ifname), nil)
}

// IsUp reports whether the up mark of ifname is there.
func (d *Dir) IsUp(ifname string) bool {
	f, err := d.openFile(upFile(ifname), unix.O_RDONLY)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// ClearUp removes the up mark of ifname.
func (d *Dir) ClearUp(ifname string) error { return d.Remove(upFile(ifname)) }

// HasRecord reports whether ifname has a record.
func (d *Dir) HasRecord(ifname string) bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd, RecordFile(ifname), &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// owner reads the launcher's signature from a record's last line.
func owner(data []byte) (pid int, start uint64, ok bool) {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	last := lines[len(lines)-1]
	rest, found := strings.CutPrefix(last, ownerPrefix)
	if !found {
		return 0, 0, false
	}
	p, s, found := strings.Cut(rest, " start=")
	if !found {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(s, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, 0, false
	}
	return pid, start, true
}

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot. With the pid it names one process for good: a
// reused pid has a later start time.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}
