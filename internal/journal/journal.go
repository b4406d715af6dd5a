// Package journal sends entries to systemd's journal over its native
// protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): one datagram of
// KEY=value lines on a unix socket.
//
// go-systemd's journal package does the same through package net, whose
// resolver and poller a helper that lives a few milliseconds pays for at
// start-up (docs/benchmarks.md); the protocol is small enough to speak
// over a plain x/sys/unix socket.
package journal

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Socket is where journald listens for native entries.
const Socket = "/run/systemd/journal/socket"

// Priorities of entries (syslog levels).
const (
	PriErr     = 3
	PriWarning = 4
	PriInfo    = 6
)

// A Conn is a datagram socket connected to journald.
type Conn struct {
	fd int
}

// Open connects to journald's socket at path (Socket on a systemd host).
// It fails when no journald listens there, so that callers log to stderr
// instead.
func Open(path string) (*Conn, error) {
	// Most hosts the helpers run on without journald have no socket file:
	// a stat says so for a fraction of what creating a socket costs.
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Conn{fd: fd}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// Send sends one entry: msg as MESSAGE, pri as PRIORITY (a syslog level)
// and fields, whose names must be upper-case letters, digits and '_', not
// starting with '_' (journald drops other fields). An entry too large for
// a datagram goes in a sealed memfd passed along, as sd_journal_send does.
func (c *Conn) Send(msg string, pri int, fields map[string]string) error {
	b := appendField(nil, "PRIORITY", strconv.Itoa(pri))
	b = appendField(b, "MESSAGE", msg)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !validName(k) {
			return errors.New("journal field name " + strconv.Quote(k) + " is invalid")
		}
		b = appendField(b, k, fields[k])
	}
	err := unix.Sendmsg(c.fd, b, nil, nil, 0)
	if err != unix.EMSGSIZE && err != unix.ENOBUFS {
		return err
	}
	return c.sendFile(b)
}

// sendFile passes the entry in a sealed memfd, for entries larger than the
// socket's send buffer.
func (c *Conn) sendFile(b []byte) error {
	fd, err := unix.MemfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for p := b; len(p) > 0; {
		n, err := unix.Write(fd, p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	// journald maps a sealed memfd as it is; an unsealed one it would
	// have to copy, and refuses from unprivileged senders.
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return err
	}
	return unix.Sendmsg(c.fd, nil, unix.UnixRights(fd), nil, 0)
}

// appendField appends KEY=value, or for a value holding a newline KEY,
// newline, its length as 64-bit little-endian and the value.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	if strings.IndexByte(v, '\n') < 0 {
		b = append(b, '=')
		b = append(b, v...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(v)))
	b = append(b, v...)
	return append(b, '\n')
}

func validName(k string) bool {
	if k == "" || k[0] == '_' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// StderrIsJournal reports whether stderr is a stream journald reads (a
// systemd service's): JOURNAL_STREAM, read with getenv, holds its device
// and inode. A nil getenv, for a helper whose environment is its caller's
// to choose (AT_SECURE), gives false: the caller must not be able to make
// it keep a message from the journal or from stderr.
func StderrIsJournal(getenv func(string) string) bool {
	if getenv == nil {
		return false
	}
	return isStream(unix.Stderr, getenv("JOURNAL_STREAM"))
}

// isStream reports whether fd is the stream "device:inode" names.
func isStream(fd int, stream string) bool {
	d, i, ok := strings.Cut(stream, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(d, 10, 64)
	ino, err2 := strconv.ParseUint(i, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Dev == dev && st.Ino == ino
}
