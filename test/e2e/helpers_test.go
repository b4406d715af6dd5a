package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// Bounds on waits: generous, since CI machines are small and TCG is slow;
// they only turn a hung QEMU into a failure.
const (
	bootTimeout = 3 * time.Minute
	exitTimeout = 2 * time.Minute
	pingTimeout = 60 * time.Second
)

const qemuBinary = "qemu-system-x86_64"

var (
	guestOnce  sync.Once
	guestFiles guest.Files
	guestErr   error
)

// testGuest builds the guest once per test binary (the build script
// caches it across runs).
func testGuest(t *testing.T) guest.Files {
	t.Helper()
	guestOnce.Do(func() {
		var log bytes.Buffer
		guestFiles, guestErr = guest.Build(&log)
		if guestErr != nil {
			guestErr = fmt.Errorf("%w\n%s", guestErr, log.String())
		}
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return guestFiles
}

// setup gives a test root, its tools, a namespace and the guest.
func setup(t *testing.T) (*nstest.NS, guest.Files) {
	t.Helper()
	nstest.RequireRoot(t)
	nstest.RequireTool(t, qemuBinary, "qemu-system-x86")
	nstest.RequireTool(t, "busybox", "busybox-static")
	ns := nstest.New(t)
	return ns, testGuest(t)
}

// addBridge adds an up bridge with an address, as a host's virbr0 is.
func addBridge(t *testing.T, ns *nstest.NS, name, cidr string, mtu int) *netlink.Bridge {
	t.Helper()
	br := ns.AddBridge(t, name, mtu)
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.AddrAdd(br, a); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, name, err)
	}
	return br
}

// helperEnv keeps the helpers away from the machine's own configuration:
// their config file is dir/qemu-ifup.conf (absent unless the test writes
// it) and qemu-launch's records go to dir/run.
func helperEnv(dir string) []string {
	return []string{
		"QEMU_IFUP_CONFIG=" + filepath.Join(dir, "qemu-ifup.conf"),
		"QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(dir, "run"),
	}
}

// baseArgs are the machine options every test guest uses: the seed's,
// with TCG instead of KVM and less memory.
func baseArgs(g guest.Files, c guest.Config) []string {
	a := []string{"-accel", "tcg", "-m", "256", "-no-reboot", "-nographic"}
	return append(a, g.Args(c)...)
}

// A vm is QEMU, or qemu-launch running QEMU, inside a test namespace.
type vm struct {
	cmd     *exec.Cmd
	console *guest.Console
	stderr  syncBuffer
	done    chan struct{}
	err     error // from Wait, valid once done is closed
}

// startVM starts argv inside ns and makes sure it is killed, with
// everything it started, when the test ends.
func startVM(t *testing.T, ns *nstest.NS, env []string, argv ...string) *vm {
	t.Helper()
	return startVMAs(t, ns, nil, env, argv...)
}

// startVMAs is startVM as the user of cred (nil: as the test).
func startVMAs(t *testing.T, ns *nstest.NS, cred *syscall.Credential, env []string, argv ...string) *vm {
	t.Helper()
	t.Logf("in %s: %s", ns.Name, strings.Join(argv, " "))
	v := &vm{done: make(chan struct{})}
	v.cmd = exec.Command(argv[0], argv[1:]...)
	v.cmd.Env = append(os.Environ(), env...)
	v.cmd.Stderr = &v.stderr
	// Its own process group, so that cleanup reaches QEMU's children too.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	// A pipe of our own: EOF comes when every process holding it exited,
	// and Wait does not wait for the reader.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdout = w
	if err := ns.Start(v.cmd); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("start %s: %v", argv[0], err)
	}
	w.Close()
	v.console = guest.NewConsole(r, nil)
	go func() {
		v.err = v.cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		select {
		case <-v.done:
		default:
			syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
			<-v.done
		}
		v.console.WaitEnd(10 * time.Second)
		r.Close()
		if t.Failed() {
			t.Logf("console of %s:\n%s\nstderr:\n%s", argv[0], v.console.Output(), v.stderr.String())
		}
	})
	return v
}

// ready waits until the guest's network is configured.
func (v *vm) ready(t *testing.T) {
	t.Helper()
	if _, err := v.console.Wait("ready", bootTimeout); err != nil {
		t.Fatalf("%v (exited: %v)", err, v.exited())
	}
}

func (v *vm) exited() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its error (nil: status 0).
func (v *vm) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-v.done:
	case <-time.After(exitTimeout):
		t.Fatalf("%s still running %v after it should have ended", v.cmd.Path, exitTimeout)
	}
	if err := v.console.WaitEnd(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return v.err
}

// passed checks that the process exited 0 and the guest reported success.
func (v *vm) passed(t *testing.T) {
	t.Helper()
	if err := v.wait(t); err != nil {
		t.Errorf("%s: %v, want exit status 0", v.cmd.Path, err)
	}
	if err := v.console.Result(); err != nil {
		t.Error(err)
	}
	for _, want := range []string{"ping ", "poweroff"} {
		if !hasReport(v.console.Reports(), want) {
			t.Errorf("guest never reported %q", want)
		}
	}
}

func hasReport(reports []string, prefix string) bool {
	for _, r := range reports {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

var received = regexp.MustCompile(`(\d+) packets received`)

// hostPing pings addr from inside ns, as the seed's host pings its guest,
// and requires every reply.
func hostPing(t *testing.T, ns *nstest.NS, addr string, count int) {
	t.Helper()
	cmd := exec.Command("busybox", "ping", "-c", strconv.Itoa(count), "-w", strconv.Itoa(int(pingTimeout.Seconds())), addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := ns.Run(cmd)
	m := received.FindStringSubmatch(out.String())
	if err != nil || m == nil || m[1] != strconv.Itoa(count) {
		t.Errorf("host ping %s: %v, want %d replies:\n%s", addr, err, count, out.String())
	}
}

// onlyTap returns the name of the one tap in ns.
func onlyTap(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	names := ns.Taps(t)
	if len(names) != 1 {
		t.Fatalf("taps in %s: %q, want exactly one", ns.Name, names)
	}
	return names[0]
}

// checkPort asserts what qemu-ifup promises about a running guest's tap:
// a port of bridge, promiscuous, up, with the bridge's MTU and a MAC
// starting with 0xFE (so that the bridge keeps its own MAC).
func checkPort(t *testing.T, ns *nstest.NS, tapName, bridge string) {
	t.Helper()
	l := ns.Link(t, tapName)
	a := l.Attrs()
	br := ns.Link(t, bridge)
	if got := ns.MasterName(t, l); got != bridge {
		t.Errorf("%s: master %q, want %s", tapName, got, bridge)
	}
	if a.RawFlags&unix.IFF_PROMISC == 0 {
		t.Errorf("%s: not promiscuous", tapName)
	}
	if a.Flags&net.FlagUp == 0 {
		t.Errorf("%s: not up", tapName)
	}
	if a.MTU != br.Attrs().MTU {
		t.Errorf("%s: MTU %d, want %s's %d", tapName, a.MTU, bridge, br.Attrs().MTU)
	}
	if len(a.HardwareAddr) == 0 || a.HardwareAddr[0] != 0xfe {
		t.Errorf("%s: MAC %s, want one starting with fe", tapName, a.HardwareAddr)
	}
}

// ports lists the interfaces enslaved to bridge.
func ports(t *testing.T, ns *nstest.NS, bridge string) []string {
	t.Helper()
	br := ns.Link(t, bridge)
	links, err := ns.Handle.LinkList()
	if err != nil {
		t.Fatalf("list links in %s: %v", ns.Name, err)
	}
	var names []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkQueues checks that tapName is a multiqueue tap with queues queues.
func checkQueues(t *testing.T, ns *nstest.NS, tapName string, queues int) {
	t.Helper()
	tt, ok := ns.Link(t, tapName).(*netlink.Tuntap)
	switch {
	case !ok:
		t.Fatalf("%s is not a tap", tapName)
	case tt.Flags&netlink.TUNTAP_MULTI_QUEUE == 0:
		t.Errorf("%s: not a multiqueue tap (flags %v)", tapName, tt.Flags)
	case tt.Queues+tt.DisabledQueues != queues:
		// QEMU detaches the queues the guest's driver has not enabled
		// (TUNSETQUEUE): they count as disabled, still the tap's.
		t.Errorf("%s: %d queues enabled and %d disabled, want %d in all", tapName, tt.Queues, tt.DisabledQueues, queues)
	}
}

// pingsOnBridge checks the end of a guest on one tap: the tap is a port of
// br, the host pings the guest, the guest passes and reports its own pings
// of the host. It returns the tap.
func pingsOnBridge(t *testing.T, ns *nstest.NS, v *vm, br string) string {
	t.Helper()
	tap := onlyTap(t, ns)
	checkPort(t, ns, tap, br)
	hostPing(t, ns, guestAddr, pings)
	v.passed(t)
	if !hasReport(v.console.Reports(), "ping "+hostAddr+" ok") {
		t.Errorf("guest did not ping %s: %q", hostAddr, v.console.Reports())
	}
	return tap
}

// noTapsLeft checks that no tap outlived QEMU in ns.
func noTapsLeft(t *testing.T, ns *nstest.NS) {
	t.Helper()
	if left := ns.Taps(t); len(left) != 0 {
		t.Errorf("taps left after QEMU ended: %q", left)
	}
}
