// Package qmp is a small client for the QEMU Machine Protocol: the
// greeting and capabilities handshake, and the few commands qemu-launch
// needs, each taking a context first.
//
// Commands run one at a time over one connection, without a background
// reader: a reply is read right after its command, and the asynchronous
// events QEMU sends in between are handed to Client.Events.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// An Event is an asynchronous QMP event, such as SHUTDOWN or POWERDOWN.
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
}

// An Error is an error reply from QEMU.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return e.Class + ": " + e.Desc }

// ErrClosed is returned by commands on a client that was closed or whose
// connection broke (after a cancelled command, for one).
var ErrClosed = errors.New("qmp: connection closed")

// A Client is a QMP connection after the handshake.
type Client struct {
	// Events, if set, receives the events read while waiting for
	// replies. It is called on the goroutine running the command.
	Events func(Event)

	mu     sync.Mutex
	conn   net.Conn
	r      *bufio.Reader
	broken error
	id     uint64
}

// message is any line QEMU sends.
type message struct {
	QMP    json.RawMessage `json:"QMP"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Return json.RawMessage `json:"return"`
	Error  *Error          `json:"error"`
	ID     *uint64         `json:"id"`
}

// New reads QEMU's greeting on conn and negotiates capabilities. On
// failure or when ctx ends first, it closes conn.
func New(ctx context.Context, conn net.Conn) (*Client, error) {
	c := &Client{conn: conn, r: bufio.NewReader(conn)}
	err := c.withContext(ctx, func() error {
		m, err := c.read()
		if err != nil {
			return fmt.Errorf("reading QMP greeting: %w", err)
		}
		if m.QMP == nil {
			return errors.New("reading QMP greeting: the peer does not speak QMP")
		}
		return nil
	})
	if err == nil {
		err = c.Execute(ctx, "qmp_capabilities", nil, nil)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = ErrClosed
	}
	return c.conn.Close()
}

// withContext runs fn with the connection's deadline following ctx. If ctx
// ends while fn reads or writes, the connection is left mid-message and
// is closed.
func (c *Client) withContext(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	err := fn()
	stopped := stop()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	var qerr *Error
	if (err != nil && !errors.As(err, &qerr)) || !stopped {
		// Mid-message, or ctx's deadline may still land on the
		// connection: it cannot carry another command.
		c.broken = ErrClosed
		c.conn.Close()
		return err
	}
	c.conn.SetDeadline(time.Time{})
	return err
}

// hungUp turns the errors of a peer that went away into
// io.ErrUnexpectedEOF, which callers take as "QEMU exited".
func hungUp(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("QEMU closed the connection: %w", io.ErrUnexpectedEOF)
	}
	return err
}

func (c *Client) read() (*message, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, hungUp(err)
	}
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("bad QMP message %.80q: %w", line, err)
	}
	return &m, nil
}

// Execute runs a command with arguments args (nil for none) and decodes
// its return value into result (nil to ignore it).
func (c *Client) Execute(ctx context.Context, command string, args, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%s: %w", command, c.broken)
	}
	c.id++
	id := c.id
	req, err := json.Marshal(struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        uint64 `json:"id"`
	}{command, args, id})
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	err = c.withContext(ctx, func() error {
		if _, err := c.conn.Write(append(req, '\n')); err != nil {
			return hungUp(err)
		}
		for {
			m, err := c.read()
			if err != nil {
				return err
			}
			if m.Event != "" {
				if c.Events != nil {
					c.Events(Event{Name: m.Event, Data: m.Data})
				}
				continue
			}
			if m.ID == nil || *m.ID != id {
				continue // the reply to an earlier, abandoned command
			}
			if m.Error != nil {
				return m.Error
			}
			if result != nil {
				return json.Unmarshal(m.Return, result)
			}
			return nil
		}
	})
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	return nil
}

// A CPU is one vCPU as query-cpus-fast describes it.
type CPU struct {
	Index    int    `json:"cpu-index"`
	ThreadID int    `json:"thread-id"`
	QOMPath  string `json:"qom-path"`
	Target   string `json:"target"`
}

// QueryCPUsFast lists the vCPUs with the host thread running each.
func (c *Client) QueryCPUsFast(ctx context.Context) ([]CPU, error) {
	var cpus []CPU
	err := c.Execute(ctx, "query-cpus-fast", nil, &cpus)
	return cpus, err
}

// An IOThread is one -object iothread as query-iothreads describes it.
type IOThread struct {
	ID       string `json:"id"`
	ThreadID int    `json:"thread-id"`
}

// QueryIOThreads lists the I/O threads with the host thread running each.
func (c *Client) QueryIOThreads(ctx context.Context) ([]IOThread, error) {
	var ts []IOThread
	err := c.Execute(ctx, "query-iothreads", nil, &ts)
	return ts, err
}

// Status is what query-status returns.
type Status struct {
	Running bool   `json:"running"`
	Status  string `json:"status"`
}

// QueryStatus says whether the guest runs.
func (c *Client) QueryStatus(ctx context.Context) (Status, error) {
	var s Status
	err := c.Execute(ctx, "query-status", nil, &s)
	return s, err
}

// Cont resumes a paused guest.
func (c *Client) Cont(ctx context.Context) error {
	return c.Execute(ctx, "cont", nil, nil)
}

// SystemPowerdown asks the guest to power down (an ACPI power button
// press); the guest may ignore it.
func (c *Client) SystemPowerdown(ctx context.Context) error {
	return c.Execute(ctx, "system_powerdown", nil, nil)
}

// Quit makes QEMU exit at once. QEMU may close the connection before its
// reply arrives; that counts as success.
func (c *Client) Quit(ctx context.Context) error {
	err := c.Execute(ctx, "quit", nil, nil)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}
