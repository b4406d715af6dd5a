// Package nstest gives integration tests throwaway network namespaces with
// bridges and taps inside, so that tests never touch the machine's own
// interfaces.
package nstest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// EnvRequire, when set to 1 (as CI sets it), turns the skip of an
// integration test that cannot run into a failure: a root CI job must not
// pass by skipping.
const EnvRequire = "QTH_REQUIRE_INTEGRATION"

// Skip skips the test with why, one line, or fails it where every test
// must run (EnvRequire=1, as in CI). Every "cannot run here" goes through
// it.
func Skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", why, EnvRequire)
	}
	t.Skip(why)
}

// RequireRoot skips the test, with one line saying why, unless the process
// can create namespaces and taps.
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped under -short (make unit)")
	}
	switch {
	case os.Geteuid() != 0:
		Skip(t, "integration test needs root (network namespaces, /dev/net/tun): run make test as root")
	default:
		f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
		if err != nil {
			Skip(t, "integration test needs /dev/net/tun: "+err.Error())
		}
		f.Close()
	}
}

// An NS is a named network namespace (visible in "ip netns list" while the
// test runs) with a vishvananda/netlink handle, for building test fixtures,
// and a link.Conn, the helpers' own, both bound to it.
type NS struct {
	Name   string
	Handle *netlink.Handle
	Conn   *link.Conn
	ns     netns.NsHandle
}

// New creates a namespace named qth-<random> and removes it, and whatever
// is inside, when the test ends.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	var b [4]byte
	rand.Read(b[:])
	n := &NS{Name: "qth-" + hex.EncodeToString(b[:])}
	err := onThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		h, err := netns.NewNamed(n.Name)
		if err != nil {
			return fmt.Errorf("create netns %s: %w", n.Name, err)
		}
		n.ns = h
		return netns.Set(orig)
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Handle, err = netlink.NewHandleAt(n.ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.Name, err)
	}
	t.Cleanup(func() {
		if n.Conn != nil {
			n.Conn.Close()
		}
		n.Handle.Close()
		n.ns.Close()
		if err := netns.DeleteNamed(n.Name); err != nil {
			t.Errorf("delete netns %s: %v", n.Name, err)
		}
	})
	// A Conn lives in the namespace of the thread that opens it.
	if err := n.Do(func() (err error) { n.Conn, err = link.Open(); return err }); err != nil {
		t.Fatalf("link.Conn in %s: %v", n.Name, err)
	}
	// The namespace starts with lo down; bring it up as a host would have.
	if lo, err := n.Handle.LinkByName("lo"); err == nil {
		n.Handle.LinkSetUp(lo)
	}
	return n
}

// onThread runs fn on a fresh OS thread that is thrown away afterwards, so
// that a namespace switch inside fn can never leak to other goroutines.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with the goroutine.
		errc <- fn()
	}()
	return <-errc
}

// Do runs fn on an OS thread inside the namespace. Taps must be created
// there: TUNSETIFF acts in the namespace of the calling thread.
func (n *NS) Do(fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(n.ns); err != nil {
			return fmt.Errorf("enter %s: %w", n.Name, err)
		}
		return fn()
	})
}

// RunDir is the namespace's run directory under base (package rundir),
// where the helpers keep their records and locks for it.
func (n *NS) RunDir(t testing.TB, base string) string {
	t.Helper()
	var id uint64
	if err := n.Do(func() (err error) { id, err = rundir.NetnsID(); return err }); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(base, rundir.NetnsDir(id))
}

// PlantRecord writes data as the record of the tap ifname in the
// namespace's run directory under base, as an administrator would by hand
// (unsigned: never stale), and returns its path. The directory is made as
// the helpers make it, so that they take it for the namespace's.
func (n *NS) PlantRecord(t testing.TB, base, ifname, data string) string {
	t.Helper()
	var path string
	err := n.Do(func() error {
		d, err := rundir.Open(base)
		if err != nil {
			return err
		}
		defer d.Close()
		path = d.RecordPath(ifname)
		return d.WriteFile(rundir.RecordFile(ifname), []byte(data))
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// OwnRunDir is the run directory under base of the test process's own
// network namespace, where a launcher started outside any NS keeps its
// records.
func OwnRunDir(t testing.TB, base string) string {
	t.Helper()
	id, err := rundir.NetnsID()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(base, rundir.NetnsDir(id))
}

// Start starts cmd inside the namespace; the child inherits the namespace
// of the thread that forks it.
func (n *NS) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// Run runs cmd inside the namespace and waits for it.
func (n *NS) Run(cmd *exec.Cmd) error {
	if err := n.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// ExitStatus turns the error of a finished command into its exit status: 0
// for nil, the status of a process that exited, and an error for anything
// else (not started, killed by a signal).
func ExitStatus(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), nil
	}
	return -1, err
}

// AddBridge creates an up bridge; mtu 0 leaves the kernel's default and
// lets the bridge follow its ports, as a bridge made by hand does.
func (n *NS) AddBridge(t testing.TB, name string, mtu int) *netlink.Bridge {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := n.Handle.LinkAdd(br); err != nil {
		t.Fatalf("add bridge %s: %v", name, err)
	}
	l := n.Link(t, name)
	if mtu != 0 {
		if err := n.Handle.LinkSetMTU(l, mtu); err != nil {
			t.Fatalf("set mtu of %s: %v", name, err)
		}
	}
	if err := n.Handle.LinkSetUp(l); err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
	return n.Link(t, name).(*netlink.Bridge)
}

// AddTap creates a persistent, down tap as QEMU leaves it before running
// the up-script (QEMU's own tap is not persistent; persistence lets the
// test create it without holding its file descriptor).
func (n *NS) AddTap(t testing.TB, name string) netlink.Link {
	t.Helper()
	err := n.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: name},
			Mode:      netlink.TUNTAP_MODE_TAP,
			Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE,
		}
		if err := h.LinkAdd(tap); err != nil {
			return err
		}
		// The kernel's random MAC starts with 0xfe one time in 64, and
		// then ifup has no MAC to change: tests that expect the change
		// would fail by chance. Netlink ignores a MAC given at creation.
		return h.LinkSetHardwareAddr(tap, TapMAC(name))
	})
	if err != nil {
		t.Fatalf("add tap %s: %v", name, err)
	}
	return n.Link(t, name)
}

// TapMAC is the MAC AddTap gives the tap called name: locally
// administered, never starting with 0xfe, distinct for distinct names.
func TapMAC(name string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(name))
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// Taps lists the names of the tun and tap interfaces in the namespace:
// what a test checks to find the tap QEMU made, or that none is left.
func (n *NS) Taps(t testing.TB) []string {
	t.Helper()
	links, err := n.Handle.LinkList()
	if err != nil {
		t.Fatalf("list links in %s: %v", n.Name, err)
	}
	var names []string
	for _, l := range links {
		if l.Type() == "tuntap" {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

// Link looks up an interface in the namespace.
func (n *NS) Link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := n.Handle.LinkByName(name)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", name, n.Name, err)
	}
	return l
}

// Exists reports whether an interface exists in the namespace.
func (n *NS) Exists(name string) bool {
	_, err := n.Handle.LinkByName(name)
	return err == nil
}

// MasterName returns the name of l's master, or "" if it has none.
func (n *NS) MasterName(t testing.TB, l netlink.Link) string {
	t.Helper()
	if l.Attrs().MasterIndex == 0 {
		return ""
	}
	m, err := n.Handle.LinkByIndex(l.Attrs().MasterIndex)
	if err != nil {
		t.Fatalf("look up master of %s: %v", l.Attrs().Name, err)
	}
	return m.Attrs().Name
}

// A Port is what a user sees of an interface with ip -d link, the state
// the helpers change: tests compare Ports before and after a run.
type Port struct {
	Exists  bool
	Index   int
	Master  string // the master's name, "" for none
	MTU     int
	MAC     string
	Promisc bool // IFF_PROMISC as set by a user, not by a bridge
	Up      bool // IFF_UP
}

// Snapshot reads the interface called name, through vishvananda/netlink
// rather than the helpers' own package link; an interface that does not
// exist gives the zero Port.
func (n *NS) Snapshot(t testing.TB, name string) Port {
	t.Helper()
	l, err := n.Handle.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("look up %s in %s: %v", name, n.Name, err)
		}
		return Port{}
	}
	a := l.Attrs()
	return Port{
		Exists:  true,
		Index:   a.Index,
		Master:  n.MasterName(t, l),
		MTU:     a.MTU,
		MAC:     a.HardwareAddr.String(),
		Promisc: a.RawFlags&unix.IFF_PROMISC != 0,
		Up:      a.RawFlags&unix.IFF_UP != 0,
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds the project's commands once per test binary and returns
// the directory holding them (qemu-ifup, qemu-ifdown, qemu-launch).
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "qth-bin-")
		if buildErr != nil {
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/...")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// Main runs the tests of a package that uses Binaries and removes the
// binaries afterwards:
//
//	func TestMain(m *testing.M) { os.Exit(nstest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// ModuleRoot finds the repository: the directory of go.mod above the
// working directory (a test's is its package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
