package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// publicGuest copies the guest's files where the unprivileged QEMU can
// read them (the cache may sit below a directory only root enters).
func publicGuest(t *testing.T, g guest.Files, dir string) guest.Files {
	t.Helper()
	out := guest.Files{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.gz")}
	for src, dst := range map[string]string{g.Kernel: out.Kernel, g.Initrd: out.Initrd} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// procStatus returns the lines of /proc/PID/status that start with key.
func procStatus(t *testing.T, pid int, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, key)
	return ""
}

// TestUnprivilegedBridgeHelper is the unprivileged path as a user follows
// it: one ACL line, and QEMU run as a user with no privileges at all with
// -netdev bridge,helper= pointing at our helper, which holds only the file
// capability cap_net_admin. The guest must ping the host and back, and
// QEMU must have run as that user without a capability. Once directly, once
// with a helper string holding a blank, which QEMU runs through /bin/sh -c.
func TestUnprivilegedBridgeHelper(t *testing.T) {
	tests := []struct {
		name, model string
		helperArgs  string // after the helper's path in helper=
	}{
		{"direct", "virtio-net-pci", ""},
		{"through sh", "e1000", " --use-vnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, g := setup(t)
			dir := nstest.PublicDir(t)
			acl := filepath.Join(dir, "bridge.conf")
			if err := os.WriteFile(acl, []byte("allow virbr0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			helper := nstest.BuildWithACL(t, dir, acl, "qemu-bridge-helper")
			nstest.SetCap(t, helper, "cap_net_admin+ep")
			nstest.OpenTun(t)
			g = publicGuest(t, g, dir)
			addBridge(t, ns, "virbr0", hostAddr+"/24", 9000)

			args := append([]string{qemuBinary}, baseArgs(g, guest.Config{Answer: pings})...)
			args = append(args,
				"-device", tt.model+",netdev=vm0",
				"-netdev", "bridge,id=vm0,br=virbr0,helper="+helper+tt.helperArgs)
			user := nstest.Nobody(t)
			// HOME and the rest of root's environment mean nothing to
			// the user; the helper ignores the environment anyway.
			v := startVMAs(t, ns, user, []string{"HOME=/"}, args...)
			v.ready(t)

			pid := v.cmd.Process.Pid
			if uid := strings.Fields(procStatus(t, pid, "Uid")); len(uid) < 2 || uid[0] != strconv.FormatUint(uint64(user.Uid), 10) || uid[1] == "0" {
				t.Errorf("QEMU's Uid: %q, want %d (real and effective)", uid, user.Uid)
			}
			for _, set := range []string{"CapEff", "CapPrm"} {
				if c := procStatus(t, pid, set); c != "0000000000000000" {
					t.Errorf("QEMU's %s = %s, want none", set, c)
				}
			}
			pingsOnBridge(t, ns, v, "virbr0")
			// The tap died with QEMU's descriptor.
			noTapsLeft(t, ns)
		})
	}
}

// qemuChild returns the pid of the launcher's one child, QEMU.
func qemuChild(t *testing.T, launcher int) int {
	t.Helper()
	tids, err := sched.Threads(launcher)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, tid := range tids {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", launcher, tid))
		kids = append(kids, strings.Fields(string(data))...)
	}
	if len(kids) != 1 {
		t.Fatalf("children of qemu-launch: %q, want QEMU alone", kids)
	}
	pid, err := strconv.Atoi(kids[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// canRaiseMemLock reports whether this process, and so a qemu-launch it
// starts, may lift its memory-lock limit: the hard limit is already
// unlimited, or it holds CAP_SYS_RESOURCE (these build machines' containers
// do not).
func canRaiseMemLock(t *testing.T) bool {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max == unix.RLIM_INFINITY {
		return true
	}
	eff, err := strconv.ParseUint(procStatus(t, os.Getpid(), "CapEff"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return eff&(1<<unix.CAP_SYS_RESOURCE) != 0
}

// TestLaunchSeedCommandAsUser runs the seed's real-time command through
// qemu-launch --user: QEMU runs as nobody without a capability, while the
// launcher still pins the vCPUs and gives vCPU 1 SCHED_FIFO 80; the guest
// pings the host and back over a tap the launcher opened and passed to
// QEMU. With mlock=on the launcher must raise the memory-lock limit for
// QEMU: where it can, QEMU's memory is locked; where it cannot (no
// CAP_SYS_RESOURCE, as in these containers), the launcher refuses before
// QEMU starts, saying why, and leaves nothing behind.
func TestLaunchSeedCommandAsUser(t *testing.T) {
	for _, mlock := range []string{"on", "off"} {
		t.Run("mlock="+mlock, func(t *testing.T) { launchSeedAsUser(t, mlock) })
	}
}

func launchSeedAsUser(t *testing.T, mlock string) {
	ns, g := setup(t)
	launch := launcher(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 9000)
	dir := t.TempDir()
	g = publicGuest(t, g, nstest.PublicDir(t))
	user := nstest.Nobody(t)

	c0, c1 := twoCPUs(t)
	args := append([]string{launch, "--user", "nobody"}, seedCommand(g, c0, c1, mlock)...)
	lock := mlock == "on"
	if lock && !canRaiseMemLock(t) {
		v := startVM(t, ns, helperEnv(dir), args...)
		err := v.wait(t)
		want := "qemu-launch: QEMU as user nobody locks its memory (-realtime mlock=on or -overcommit mem-lock=on), but the launcher cannot raise the memory-lock limit"
		// Beside the host check's warnings, one line says why.
		var errs []string
		for _, l := range strings.Split(strings.TrimSuffix(v.stderr.String(), "\n"), "\n") {
			if !strings.HasPrefix(l, "qemu-launch: warning: ") {
				errs = append(errs, l)
			}
		}
		if code, _ := nstest.ExitStatus(err); code == 0 || len(errs) != 1 || !strings.HasPrefix(errs[0], want) {
			t.Errorf("qemu-launch: %v, errors %q; want a failure with one line starting %q", err, errs, want)
		}
		if left := ns.Taps(t); len(left) != 0 {
			t.Errorf("taps left behind: %q", left)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "run", "*", "*")); len(left) != 0 {
			t.Errorf("records left behind: %q", left)
		}
		return
	}
	v := startVM(t, ns, helperEnv(dir), args...)
	v.ready(t)

	pid := qemuChild(t, v.cmd.Process.Pid)
	if uid := strings.Fields(procStatus(t, pid, "Uid")); len(uid) < 2 || uid[0] != strconv.FormatUint(uint64(user.Uid), 10) || uid[1] != uid[0] {
		t.Errorf("QEMU's Uid: %q, want %d (real and effective)", uid, user.Uid)
	}
	for _, set := range []string{"CapEff", "CapPrm"} {
		if c := procStatus(t, pid, set); c != "0000000000000000" {
			t.Errorf("QEMU's %s = %s, want none", set, c)
		}
	}
	if kb, err := nstest.LockedKB(pid); err != nil || (kb >= 256*1024) != lock {
		t.Errorf("QEMU's locked memory: %d kB, %v; want the guest's 256 MiB locked: %v", kb, err, lock)
	}
	// vCPU 1 is the only SCHED_FIFO thread, at 80 on c1; vCPU 0 runs
	// alone on c0 under the normal policy.
	tids, err := sched.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	var fifo, onC0 []sched.Thread
	for _, tid := range tids {
		th, err := sched.Read(pid, tid)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		if th.Policy == unix.SCHED_FIFO {
			fifo = append(fifo, th)
		}
		if c0 != c1 && th.CPUs.String() == strconv.Itoa(c0) {
			onC0 = append(onC0, th)
		}
	}
	if len(fifo) != 1 || fifo[0].Prio != 80 || fifo[0].CPUs.String() != strconv.Itoa(c1) {
		t.Errorf("SCHED_FIFO threads of QEMU: %v, want one at priority 80 on CPU %d", fifo, c1)
	}
	if c0 != c1 && (len(onC0) != 1 || onC0[0].Policy != 0 /* SCHED_OTHER */) {
		t.Errorf("threads of QEMU on CPU %d alone: %v, want vCPU 0 under SCHED_OTHER", c0, onC0)
	}

	tap := pingsOnBridge(t, ns, v, "virbr0")
	noTapsLeft(t, ns)
	if left, _ := filepath.Glob(filepath.Join(dir, "run", "*", "*")); len(left) != 0 {
		t.Errorf("records left behind: %q", left)
	}
	for _, want := range []string{"qemu-ifup: " + tap + ": attach to virbr0", "qemu-ifdown: " + tap + ": detach from virbr0"} {
		if !strings.Contains(v.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, v.stderr.String())
		}
	}
}

// TestLaunchMultiqueueAsUser: a tap with two queues for a QEMU run as
// nobody: the launcher opens both queues and passes them as fds=, QEMU
// uses them (the tap keeps two queues), and the guest and the host ping
// each other. (No vhost: QEMU would open /dev/vhost-net as nobody.)
func TestLaunchMultiqueueAsUser(t *testing.T) {
	ns, g := setup(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
	g = publicGuest(t, g, nstest.PublicDir(t))
	args := append([]string{launcher(t), "--user", "nobody", "--", qemuBinary, "-name", "mq"}, baseArgs(g, guest.Config{Answer: pings})...)
	args = append(args, "-device", "virtio-net-pci,netdev=vm0,mq=on,vectors=6", "-netdev", "tap,id=vm0,queues=2")
	v := startVM(t, ns, helperEnv(t.TempDir()), args...)
	v.ready(t)

	name := onlyTap(t, ns)
	checkPort(t, ns, name, "virbr0")
	checkQueues(t, ns, name, 2)
	if uid := strings.Fields(procStatus(t, qemuChild(t, v.cmd.Process.Pid), "Uid")); len(uid) < 2 || uid[1] == "0" {
		t.Errorf("QEMU's Uid: %q, want nobody's", uid)
	}
	hostPing(t, ns, guestAddr, pings)
	v.passed(t)
	noTapsLeft(t, ns)
}
