package rundir

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// A RecordInfo is one record of the directory as qemu-launch --list
// shows it: its tap, its content and the launcher that signed it.
type RecordInfo struct {
	Ifname string
	Path   string
	Data   []byte
	// Pid is the launcher that wrote it, 0 for a record written by hand.
	Pid int
	// Live: that launcher is still running (same pid, same start time).
	Live bool
}

// A VMLockInfo is the lock of a VM some launcher holds or left.
type VMLockInfo struct {
	Name string // the VM's name; a long one is shortened by its hash
	Pid  int    // the holder's pid as it wrote it, 0 if none
}

// Records lists the records of the directory, by tap name, without
// removing stale ones (ReadRecord does that).
func (d *Dir) Records() ([]RecordInfo, error) {
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	var out []RecordInfo
	for _, n := range names {
		ifname, ok := strings.CutSuffix(n, ".conf")
		if !ok || strings.HasPrefix(n, ".") {
			continue
		}
		data, err := d.ReadFile(n, MaxRecord)
		if err != nil {
			continue // gone meanwhile, or not a regular file
		}
		r := RecordInfo{Ifname: ifname, Path: d.RecordPath(ifname), Data: data}
		if pid, start, ok := owner(data); ok {
			r.Pid = pid
			st, err := startTime(pid)
			r.Live = err == nil && st == start
		}
		out = append(out, r)
	}
	return out, nil
}

// VMLocks lists the VM locks of the directory: held by a running
// launcher, or left by one that was killed.
func (d *Dir) VMLocks() ([]VMLockInfo, error) {
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	var out []VMLockInfo
	for _, n := range names {
		esc, ok := strings.CutPrefix(n, "vm.")
		if !ok {
			continue
		}
		if esc, ok = strings.CutSuffix(esc, ".lock"); !ok {
			continue
		}
		name, err := url.PathUnescape(esc)
		if err != nil {
			name = esc
		}
		info := VMLockInfo{Name: name}
		if f, err := d.openFile(n, unix.O_RDONLY); err == nil {
			info.Pid = readPid(f)
			f.Close()
		}
		out = append(out, info)
	}
	return out, nil
}

// names lists the directory's entries, sorted.
func (d *Dir) names() ([]string, error) {
	names, err := dirNames(d.fd)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", d.Path, err)
	}
	sort.Strings(names)
	return names, nil
}

// StartTime is when process pid started, in clock ticks since boot
// (field 22 of /proc/PID/stat).
func StartTime(pid int) (uint64, error) { return startTime(pid) }
