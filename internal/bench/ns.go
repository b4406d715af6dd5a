// Package bench measures qemu-ifup and qemu-ifdown against the classic shell
// scripts and an empty Go program, inside throwaway network namespaces.
package bench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// An ns is a named namespace qth-bench-<random> with a runner: one OS
// thread inside it that creates taps and starts processes, so that children
// inherit the namespace and nothing else in this process changes namespace.
type ns struct {
	name string
	h    *netlink.Handle
	conn *link.Conn // the helpers' own netlink, for inProcess
	nsh  netns.NsHandle
	jobs chan func()
}

func newNS() (*ns, error) {
	var b [4]byte
	rand.Read(b[:])
	n := &ns{name: "qth-bench-" + hex.EncodeToString(b[:]), jobs: make(chan func())}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread dies with the goroutine.
		h, err := netns.NewNamed(n.name)
		if err != nil {
			ready <- fmt.Errorf("create netns %s: %w", n.name, err)
			return
		}
		n.nsh = h
		n.h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			ready <- fmt.Errorf("netlink in %s: %w", n.name, err)
			return
		}
		n.conn, err = link.Open()
		if err != nil {
			n.h.Close()
			ready <- fmt.Errorf("netlink in %s: %w", n.name, err)
			return
		}
		ready <- nil
		for job := range n.jobs {
			job()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	if lo, err := n.h.LinkByName("lo"); err == nil {
		n.h.LinkSetUp(lo)
	}
	return n, nil
}

// do runs fn on the namespace's thread and waits for it.
func (n *ns) do(fn func()) {
	done := make(chan struct{})
	n.jobs <- func() { fn(); close(done) }
	<-done
}

func (n *ns) close() error {
	close(n.jobs)
	n.conn.Close()
	n.h.Close()
	n.nsh.Close()
	if err := netns.DeleteNamed(n.name); err != nil {
		return fmt.Errorf("delete netns %s: %w", n.name, err)
	}
	return nil
}

// addBridge creates an up bridge.
func (n *ns) addBridge(name string) (*netlink.Bridge, error) {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, Flags: net.FlagUp}}
	if err := n.h.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("add bridge %s: %w", name, err)
	}
	l, err := n.h.LinkByName(name)
	if err != nil {
		return nil, err
	}
	return l.(*netlink.Bridge), nil
}

// addTap creates a persistent, down tap, as QEMU hands it to its
// up-script. It must run on the namespace's thread (TUNSETIFF acts in the
// caller's namespace).
func (n *ns) addTap(name string) error {
	return n.h.LinkAdd(&netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE,
	})
}

func (n *ns) delLink(name string) error {
	l, err := n.h.LinkByName(name)
	if err != nil {
		return err
	}
	return n.h.LinkDel(l)
}

// populate fills the namespace with veth pairs (the fastest links to make
// in bulk) until it holds total interfaces, ports of them on br.
func (n *ns) populate(total, ports int, br *netlink.Bridge) error {
	have := 3 // lo, the bridge, one tap at a time
	for i := 0; have < total; i++ {
		master := 0
		if i < ports {
			master = br.Index
		}
		v := &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("v%da", i), MasterIndex: master, Flags: net.FlagUp},
			PeerName:  fmt.Sprintf("v%db", i),
		}
		if total-have == 1 {
			// An odd count: end with a lone tap.
			var err error
			n.do(func() { err = n.addTap(fmt.Sprintf("pad%d", i)) })
			if err != nil {
				return err
			}
			have++
			continue
		}
		if err := n.h.LinkAdd(v); err != nil {
			return fmt.Errorf("add veth %s: %w", v.Name, err)
		}
		have += 2
	}
	return nil
}

// countLinks counts the namespace's interfaces (for the report only; the
// helpers never list links).
func (n *ns) countLinks() (int, error) {
	ls, err := n.h.LinkList()
	return len(ls), err
}

// start starts argv in the namespace; call on the namespace's thread.
func start(argv []string, env []string, stderr *os.File) (*exec.Cmd, error) {
	cmd := newCmd(argv, env)
	cmd.Stderr = stderr
	return cmd, cmd.Start()
}

func newCmd(argv, env []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	return cmd
}

// A usage is what a process (and the children it waited for: a script's
// tools) cost: minor page faults and CPU time, user and system.
type usage struct {
	faults int64
	cpu    time.Duration
}

func (u *usage) add(v usage) {
	u.faults += v.faults
	u.cpu += v.cpu
}

// wait waits for cmd and says why it failed, with its stderr.
func wait(cmd *exec.Cmd, stderr *os.File) (usage, error) {
	err := cmd.Wait()
	var u usage
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.faults = ru.Minflt
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err != nil {
		msg := ""
		if stderr != nil {
			b := make([]byte, 512)
			k, _ := stderr.ReadAt(b, 0)
			msg = string(b[:k])
		}
		return usage{}, fmt.Errorf("%s: %v: %s", cmd.Path, err, msg)
	}
	return u, nil
}

// peakRSS runs argv to completion under ptrace, stops it as it exits and
// returns its VmHWM in KiB: the high-water mark of its own memory. (The
// ru_maxrss that wait4 returns is useless here: execve keeps the maximum
// of the address space it replaces, which after a vfork is this process's.)
// Call on the thread that will trace the child, the namespace's thread.
func peakRSS(argv, env []string) (int64, error) {
	cmd := newCmd(argv, env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	defer cmd.Process.Release()
	var ws unix.WaitStatus
	// The first stop is the SIGTRAP after execve.
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return 0, err
	}
	if err := unix.PtraceSetOptions(pid, unix.PTRACE_O_TRACEEXIT|unix.PTRACE_O_EXITKILL); err != nil {
		return 0, fmt.Errorf("ptrace %s: %w", argv[0], err)
	}
	hwm, sig := int64(-1), 0
	for {
		if err := unix.PtraceCont(pid, sig); err != nil {
			return 0, fmt.Errorf("ptrace %s: %w", argv[0], err)
		}
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			return 0, err
		}
		switch {
		case ws.Exited() && ws.ExitStatus() != 0:
			return 0, fmt.Errorf("%s: exit status %d", argv[0], ws.ExitStatus())
		case ws.Exited():
			if hwm < 0 {
				return 0, fmt.Errorf("%s: exited without an exit stop", argv[0])
			}
			return hwm, nil
		case ws.Signaled():
			return 0, fmt.Errorf("%s: %v", argv[0], ws.Signal())
		}
		sig = 0
		switch {
		case ws.TrapCause() == unix.PTRACE_EVENT_EXIT:
			var err error
			if hwm, err = readHWM(pid); err != nil {
				return 0, err
			}
		case ws.StopSignal() != syscall.SIGTRAP:
			sig = int(ws.StopSignal()) // pass signals on (Go's SIGURG)
		}
	}
}

// readHWM reads VmHWM from /proc/PID/status, in KiB.
func readHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
