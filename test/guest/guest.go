// Package guest is the tiny Linux guest of the end-to-end tests and the
// demo: a Debian kernel and a busybox initramfs (made by the build script
// beside this file) whose init configures its NICs, pings, answers pings,
// reports on the serial console and powers off.
package guest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// Marker starts every line the guest's init reports on the console.
const Marker = "qth-guest: "

// Files are the guest's kernel and initramfs.
type Files struct {
	Kernel, Initrd string
}

// Build runs the build script, which downloads the kernel package once and
// rebuilds the initramfs only when its inputs changed, and returns the
// files. The script's progress goes to log.
func Build(log io.Writer) (Files, error) { return build(log, "test", "initrd.gz") }

// BuildRT is Build for the real-time benchmark's variant, whose initramfs
// also holds cyclictest (Config.Cyclictest).
func BuildRT(log io.Writer) (Files, error) { return build(log, "rt", "initrd-rt.gz") }

// BuildLogin builds the guest of make guest, to log into: its initramfs
// brings the network up from the kernel's ip= (or DHCP) and offers a shell
// on the serial console (README.md, "The first VM").
func BuildLogin(log io.Writer) (Files, error) { return build(log, "login", "login.gz") }

func build(log io.Writer, flavour, initrd string) (Files, error) {
	root, err := nstest.ModuleRoot()
	if err != nil {
		return Files{}, err
	}
	script := filepath.Join(root, "test", "guest", "build")
	var out bytes.Buffer
	cmd := exec.Command(script, flavour)
	cmd.Stdout = &out
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return Files{}, fmt.Errorf("%s %s: %w", script, flavour, err)
	}
	dir := strings.TrimSpace(out.String())
	f := Files{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, initrd)}
	for _, p := range []string{f.Kernel, f.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return Files{}, fmt.Errorf("guest: %s did not make %w", script, err)
		}
	}
	return f, nil
}

// A Config is what the guest does; it travels on the kernel command line.
// The zero Config is the seed's guest: eth0 192.168.122.10/24 with a
// default route via 192.168.122.1, which it pings three times.
type Config struct {
	Addrs   []string // one address/prefix per NIC, eth0 first
	Gateway string   // default route via eth0; "none" for none
	Ping    []string // hosts to ping, ADDR@SIZE for SIZE bytes of ICMP data; default the gateway
	Count   int      // echo requests per host pinged; default 3
	// Reach makes the guest wait, before it pings a host, until the host
	// answers one echo request (a peer still booting); that reply is
	// the host's too.
	Reach bool
	// Answer makes the guest wait, before it powers off, until it has
	// answered this many echo requests, so that the host can ping it.
	Answer int
	// Timeout bounds each of the guest's waits; default 60 s.
	Timeout time.Duration
	// MAC is eth0's MAC, set by the guest itself; "" keeps the NIC's.
	MAC string
	// Send is HOST:PORT:KIB: after the pings, the guest sends KIB KiB
	// to HOST:PORT over TCP and reports "sent KIB KiB to HOST:PORT in
	// S.SSs".
	Send string
	// Recv is HOST:PORT: then the guest reads from HOST:PORT until it
	// closes and reports "received N bytes from HOST:PORT in S.SSs".
	Recv string
	// Cyclictest, when set, makes the guest run cyclictest this long on
	// its last vCPU before it powers off (BuildRT's guest only).
	Cyclictest time.Duration
}

// Append is the kernel command line (QEMU's -append) for c.
func (c Config) Append() string {
	a := []string{"console=ttyS0", "quiet", "panic=-1"}
	if len(c.Addrs) > 0 {
		a = append(a, "qth.ip="+strings.Join(c.Addrs, ","))
	}
	if c.Gateway != "" {
		a = append(a, "qth.gw="+c.Gateway)
	}
	if len(c.Ping) > 0 {
		a = append(a, "qth.ping="+strings.Join(c.Ping, ","))
	}
	if c.Count > 0 {
		a = append(a, "qth.count="+strconv.Itoa(c.Count))
	}
	if c.Reach {
		a = append(a, "qth.reach=1")
	}
	if c.Answer > 0 {
		a = append(a, "qth.answer="+strconv.Itoa(c.Answer))
	}
	if c.Timeout > 0 {
		a = append(a, "qth.timeout="+strconv.Itoa(int(c.Timeout.Seconds())))
	}
	for _, kv := range [][2]string{{"qth.mac", c.MAC}, {"qth.send", c.Send}, {"qth.recv", c.Recv}} {
		if kv[1] != "" {
			a = append(a, kv[0]+"="+kv[1])
		}
	}
	if c.Cyclictest > 0 {
		a = append(a, "qth.cyclictest="+strconv.Itoa(int(c.Cyclictest.Seconds())))
	}
	return strings.Join(a, " ")
}

// Args are the QEMU arguments that boot the guest with c: kernel,
// initramfs and command line. Machine, memory and NICs are the caller's.
func (f Files) Args(c Config) []string {
	return []string{"-kernel", f.Kernel, "-initrd", f.Initrd, "-append", c.Append()}
}

// A Console reads QEMU's serial console output (the guest's reports) as
// it comes and keeps all of it for error messages.
type Console struct {
	mu      sync.Mutex
	all     bytes.Buffer
	reports []string
	changed chan struct{} // closed and replaced on every new line
	eof     bool
}

// NewConsole starts reading r until EOF; each line also goes to each,
// when not nil (a test log, the demo's terminal).
func NewConsole(r io.Reader, each func(line string)) *Console {
	c := &Console{changed: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if each != nil {
				each(line)
			}
			c.add(line)
		}
		c.mu.Lock()
		c.eof = true
		close(c.changed)
		c.mu.Unlock()
	}()
	return c
}

func (c *Console) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all.WriteString(line)
	c.all.WriteByte('\n')
	// The marker may follow other output on the same line (firmware
	// escape sequences, a kernel message without its newline).
	if i := strings.Index(line, Marker); i >= 0 {
		c.reports = append(c.reports, line[i+len(Marker):])
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// Reports are the guest's report lines so far, without the marker.
func (c *Console) Reports() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reports...)
}

// Output is everything read so far.
func (c *Console) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all.String()
}

// Wait waits until the guest reports a line starting with prefix and
// returns that line. It fails when the output ends first or after timeout.
func (c *Console) Wait(prefix string, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		c.mu.Lock()
		for ; seen < len(c.reports); seen++ {
			if strings.HasPrefix(c.reports[seen], prefix) {
				r := c.reports[seen]
				c.mu.Unlock()
				return r, nil
			}
		}
		eof, changed := c.eof, c.changed
		c.mu.Unlock()
		if eof {
			return "", fmt.Errorf("console ended before the guest reported %q", prefix)
		}
		select {
		case <-changed:
		case <-deadline.C:
			return "", fmt.Errorf("guest did not report %q within %v", prefix, timeout)
		}
	}
}

// Result is the guest's verdict: nil when it reported "result pass", else
// an error with what it reported.
func (c *Console) Result() error {
	for _, r := range c.Reports() {
		if r == "result pass" {
			return nil
		}
		if strings.HasPrefix(r, "result ") {
			return fmt.Errorf("guest %s", r)
		}
	}
	return errors.New("guest reported no result")
}

// WaitEnd waits until the console output ends (QEMU and everything that
// shared its stdout have exited), at most timeout.
func (c *Console) WaitEnd(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		eof, changed := c.eof, c.changed
		c.mu.Unlock()
		if eof {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("console still open after %v", timeout)
		}
	}
}
