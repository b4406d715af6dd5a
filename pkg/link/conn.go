package link

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ErrNotFound matches (with errors.Is) the error of a request about an
// interface that does not exist: a lookup by a name or an index nobody
// has, or a change to an interface that vanished. Such an error also
// matches unix.ENODEV, the errno the kernel answers with.
var ErrNotFound = errors.New("no such interface")

// An Errno is an error the kernel answered a request with. It matches its
// errno with errors.Is (unix.ENODEV, unix.EPERM...), and ENODEV also matches
// ErrNotFound.
type Errno struct {
	Err unix.Errno
}

func (e *Errno) Error() string { return e.Err.Error() }

// Unwrap returns the errno.
func (e *Errno) Unwrap() error { return e.Err }

// Is makes ENODEV match ErrNotFound.
func (e *Errno) Is(target error) bool {
	return target == ErrNotFound && e.Err == unix.ENODEV
}

var _ error = &Errno{}

// recvSize is the receive buffer: a link's RTM_NEWLINK without VF details
// takes a few KiB, and netlink never splits a message across datagrams.
const recvSize = 32 << 10

// A Conn is a NETLINK_ROUTE socket. It lives in the network namespace of the
// thread that opened it, whatever thread uses it later: to work in another
// namespace, open it from a thread locked into that namespace.
//
// The socket is a plain blocking one (no runtime poller, no deadlines): the
// kernel answers a route request before sendmsg returns, so a reply is
// always waiting. A Conn serves one goroutine at a time.
type Conn struct {
	fd  int
	seq uint32
	buf []byte
	// ns is the network namespace the socket lives in, for other
	// sockets to open there (NETLINK_NETFILTER); -1 when /proc could
	// not tell.
	ns int
}

// Open opens a NETLINK_ROUTE socket in the calling thread's network
// namespace.
func Open() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, &Errno{Err: err.(unix.Errno)}
	}
	ns, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		ns = -1
	}
	return &Conn{fd: fd, ns: ns}, nil
}

// NetNS returns a descriptor of the network namespace of the Conn,
// which stays the Conn's, for a socket of another kind to be opened
// there.
func (c *Conn) NetNS() (int, error) {
	if c.ns < 0 {
		return -1, errors.New("network namespace of the netlink socket unknown (is /proc mounted?)")
	}
	return c.ns, nil
}

// InCallerNS reports whether the Conn's network namespace is the calling
// thread's, where a socket of another kind opens without entering it.
func (c *Conn) InCallerNS() bool {
	if c.ns < 0 {
		return false
	}
	var mine, here unix.Stat_t
	if unix.Fstat(c.ns, &mine) != nil || unix.Stat("/proc/thread-self/ns/net", &here) != nil {
		return false
	}
	return mine.Dev == here.Dev && mine.Ino == here.Ino
}

// Close closes the socket.
func (c *Conn) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	if c.ns >= 0 {
		unix.Close(c.ns)
	}
	c.fd, c.ns = -1, -1
	return err
}

// ErrDumpInterrupted is returned when a dump kept being interrupted: the
// kernel marks a dump whose data changed while it was read
// (NLM_F_DUMP_INTR).
var ErrDumpInterrupted = errors.New("netlink dump interrupted: the data kept changing")

// roundTrip sends req and waits for its answer: the payload of the reply of
// type want for a lookup, or the kernel's acknowledgement (want 0, the
// request carrying NLM_F_ACK) for a change.
//
// A reply lost to a full receive buffer (ENOBUFS) is asked for once more:
// every request this package makes is idempotent (a lookup, or setting an
// attribute to a value), so repeating one is harmless.
func (c *Conn) roundTrip(req *nl.NetlinkRequest, want uint16) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		var payload []byte
		_, err := c.do(req, want, func(b []byte) error {
			// A lookup answers with one message; keep the first.
			if payload == nil {
				payload = append([]byte(nil), b...)
			}
			return nil
		})
		if errors.Is(err, unix.ENOBUFS) && attempt == 0 {
			continue
		}
		return payload, err
	}
}

// dump sends a dump request (NLM_F_DUMP) and calls fn with the payload of
// every message of type want in the answer; the payload points into the
// receive buffer, so fn copies what it keeps. A dump the kernel marks
// interrupted is asked for again, up to three times in all, calling reset
// first so that the caller starts over. One that lost messages to a full
// receive buffer fails with ENOBUFS: the kernel goes on with it as the
// socket is read, and refuses a new dump (EBUSY) meanwhile.
func (c *Conn) dump(req *nl.NetlinkRequest, want uint16, reset func(), fn func([]byte) error) error {
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			reset()
		}
		intr, err := c.do(req, want, fn)
		if err != nil || !intr {
			return err
		}
	}
	return ErrDumpInterrupted
}

// do sends req under a new sequence number and reads datagrams until its
// answer is complete, calling fn for each message of type want. It reports
// whether the kernel marked the answer interrupted (NLM_F_DUMP_INTR).
func (c *Conn) do(req *nl.NetlinkRequest, want uint16, fn func([]byte) error) (intr bool, err error) {
	if c.fd < 0 {
		return false, &Errno{Err: unix.EBADF}
	}
	if c.buf == nil {
		c.buf = make([]byte, recvSize)
	}
	c.seq++
	// nl numbers requests from a global counter; this socket's own
	// sequence is enough to pair replies with requests.
	req.Seq = c.seq
	if err := unix.Sendto(c.fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, &Errno{Err: errnoOf(err)}
	}
	for {
		n, _, rflags, from, err := unix.Recvmsg(c.fd, c.buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return intr, &Errno{Err: errnoOf(err)}
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return intr, errors.New("netlink reply larger than " + strconv.Itoa(len(c.buf)) + " bytes")
		}
		// Only the kernel (port 0) answers; another process may write to
		// this socket's port, and is ignored.
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		done, i, err := scan(c.buf[:n], req.Seq, want, fn)
		intr = intr || i
		if err != nil || done {
			return intr, err
		}
	}
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

// scan reads one datagram for the answer to request seq, calling fn with
// each message of type want. The answer is complete (done) at a reply that
// is not part of a multi-part one, at the end of a multi-part one
// (NLMSG_DONE), or at an NLMSG_ERROR: an error, or with errno 0 the
// acknowledgement a change asked for (want 0). Messages of other requests
// (left over after a lost reply) are skipped. intr reports a message
// marked NLM_F_DUMP_INTR.
func scan(b []byte, seq uint32, want uint16, fn func([]byte) error) (done, intr bool, err error) {
	for len(b) > 0 {
		if len(b) < unix.SizeofNlMsghdr {
			return true, intr, errors.New("netlink: truncated message header")
		}
		ln := binary.NativeEndian.Uint32(b[0:4])
		typ := binary.NativeEndian.Uint16(b[4:6])
		flags := binary.NativeEndian.Uint16(b[6:8])
		mseq := binary.NativeEndian.Uint32(b[8:12])
		if ln < unix.SizeofNlMsghdr || int(ln) > len(b) {
			return true, intr, errors.New("netlink: message length " + strconv.Itoa(int(ln)) + " out of range")
		}
		data := b[unix.SizeofNlMsghdr:ln]
		if next := nlmAlign(int(ln)); next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
		if mseq != seq {
			continue
		}
		if flags&unix.NLM_F_DUMP_INTR != 0 {
			intr = true
		}
		switch typ {
		case unix.NLMSG_NOOP:
			continue
		case unix.NLMSG_OVERRUN:
			return true, intr, &Errno{Err: unix.ENOBUFS}
		case unix.NLMSG_DONE:
			return true, intr, nil
		case unix.NLMSG_ERROR:
			if len(data) < 4 {
				return true, intr, errors.New("netlink: truncated error message")
			}
			if e := int32(binary.NativeEndian.Uint32(data[0:4])); e != 0 {
				return true, intr, &Errno{Err: unix.Errno(-e)}
			}
			return true, intr, nil
		case want:
			if err := fn(data); err != nil {
				return true, intr, err
			}
			if flags&unix.NLM_F_MULTI == 0 && want != 0 {
				return true, intr, nil
			}
		}
	}
	return false, intr, nil
}

func nlmAlign(n int) int {
	return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}
