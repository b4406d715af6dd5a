package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// launcher is the qemu-launch just built; it wires the qemu-ifup and
// qemu-ifdown beside it.
func launcher(t *testing.T) string {
	t.Helper()
	p := filepath.Join(nstest.Binaries(t), "qemu-launch")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("qemu-launch was not built: %v", err)
	}
	return p
}

// twoCPUs picks the host CPUs for the seed's two vCPUs among those this
// test may run on: two different ones where there are two.
func twoCPUs(t *testing.T) (int, int) {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	var cpus []int
	for c := 0; c < 1024 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	switch len(cpus) {
	case 0:
		t.Fatal("sched_getaffinity: no CPU")
	case 1:
		return cpus[0], cpus[0]
	}
	return cpus[0], cpus[1]
}

// TestLaunchSeedCommand runs the seed's real-time command through
// qemu-launch on stock QEMU: -realtime and -vcpu as the user wrote them,
// masks and --cpus fitted to this machine, TCG instead of KVM, and no
// script= anywhere: the launcher wires our helpers.
func TestLaunchSeedCommand(t *testing.T) {
	ns, g := setup(t)
	launch := launcher(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 9000)
	dir := t.TempDir()

	c0, c1 := twoCPUs(t)
	args := append([]string{launch}, seedCommand(g, c0, c1, "on")...)
	v := startVM(t, ns, helperEnv(dir), args...)
	v.ready(t)

	checkPort(t, ns, onlyTap(t, ns), "virbr0")
	hostPing(t, ns, guestAddr, pings)
	v.passed(t)
	if p := ports(t, ns, "virbr0"); len(p) != 0 {
		t.Errorf("ports left on virbr0 after the guest stopped: %q", p)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "run", "*", "*")); len(left) != 0 {
		t.Errorf("records left behind: %q", left)
	}
}

// TestLaunchBridgePerNIC puts a guest's two NICs on two bridges with
// qemu-launch --bridge NETDEV_ID=BR.
func TestLaunchBridgePerNIC(t *testing.T) {
	ns, g := setup(t)
	launch := launcher(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
	addBridge(t, ns, "virbr1", "192.168.123.1/24", 0)
	args := []string{launch, "--bridge", "a=virbr0", "--bridge", "b=virbr1", "--", qemuBinary, "-name", "vm"}
	args = append(append(args, baseArgs(g, twoNICs)...), twoNICArgs(func(string) string { return "" })...)
	v := startVM(t, ns, helperEnv(t.TempDir()), args...)
	v.ready(t)
	// qemu-launch names the taps: find each by its bridge.
	for _, br := range []string{"virbr0", "virbr1"} {
		p := ports(t, ns, br)
		if len(p) != 1 {
			t.Fatalf("ports of %s: %q, want one tap", br, p)
		}
		checkPort(t, ns, p[0], br)
	}
	pingBoth(t, ns, v)
}

// TestLaunchNoBridge: without virbr0, qemu-launch exits non-zero with our
// message and leaves neither tap nor record behind.
func TestLaunchNoBridge(t *testing.T) {
	ns, g := setup(t)
	dir := t.TempDir()
	args := append([]string{launcher(t), "--", qemuBinary}, baseArgs(g, guest.Config{})...)
	args = append(args, "-device", "e1000,netdev=vm0", "-netdev", "tap,id=vm0")
	refused(t, ns, helperEnv(dir), args)
	if left, _ := filepath.Glob(filepath.Join(dir, "run", "*", "*")); len(left) != 0 {
		t.Errorf("records left behind: %q", left)
	}
}

// seedCommand is the seed's real-time command fitted to CPUs c0 and c1
// for qemu-launch: --cpus, then QEMU under TCG with -realtime
// mlock=mlock, vCPU 0 on c0 and vCPU 1 at SCHED_FIFO 80 on c1, and one
// tap netdev without script=.
func seedCommand(g guest.Files, c0, c1 int, mlock string) []string {
	cpus := strconv.Itoa(c0)
	if c1 != c0 {
		cpus += "," + strconv.Itoa(c1)
	}
	return []string{"--cpus", cpus, "--",
		qemuBinary, "-accel", "tcg", "-m", "256", "-realtime", "mlock=" + mlock, "-smp", "2",
		"-name", "rt,process=rt-kvm", "-no-reboot", "-nographic",
		"-append", guest.Config{Answer: pings}.Append(),
		"-vcpu", fmt.Sprintf("0,affinity=%#x,prio=0", 1<<c0),
		"-vcpu", fmt.Sprintf("1,affinity=%#x,prio=80", 1<<c1),
		"-kernel", g.Kernel, "-initrd", g.Initrd,
		"-device", "e1000,netdev=vm0", "-netdev", "tap,id=vm0"}
}
