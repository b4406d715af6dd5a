package launch

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	qlaunch "github.com/qemu-tap-helpers/qemu-tap-helpers/internal/launch"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// listVMArgs is a paused QEMU named name with one tap, n0.
func listVMArgs(name string) []string {
	return []string{qemu, "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "64",
		"-name", name + ",debug-threads=on", "-S", "-netdev", "tap,id=n0", "-device", "e1000,netdev=n0"}
}

// TestList: two VMs on two bridges and a record left by a launcher that
// is gone. --list and --list --json show both VMs running, with their
// QEMU's pid, their tap on its bridge and the guest's MAC, and QEMU's
// threads on the CPUs they were given; the left record as stale, not
// counted as running.
func TestList(t *testing.T) {
	requireQEMU(t)
	requireCPUs(t, 0)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-a", 0)
	ns.AddBridge(t, "br-b", 0)
	runDir := filepath.Join(t.TempDir(), "run")
	env := []string{"QEMU_TAP_HELPERS_RUNDIR=" + runDir}

	one := start(t, ns, env, append([]string{"--bridge", "br-a", "--shutdown-timeout", "1s"}, listVMArgs("one")...)...)
	two := start(t, ns, env, append([]string{"--bridge", "br-b", "--cpus", "0", "--shutdown-timeout", "1s"}, listVMArgs("two")...)...)
	one.waitFor("READY=1")
	two.waitFor("READY=1")

	// A launcher killed before it could clean up leaves its record: here
	// one signed by a process that has exited.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("[Interface]\nBridge=br-a\nVMName=ghost\n# qemu-launch pid=%d start=1\n", gone.Process.Pid)
	staleFile := filepath.Join(ns.RunDir(t, runDir), "ghost-n0.conf")
	if err := os.WriteFile(staleFile, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}

	list := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), args...)
		cmd.Env = append(os.Environ(), env...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := ns.Run(cmd); err != nil {
			t.Fatalf("qemu-launch %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}

	text := list("--list")
	t.Logf("qemu-launch --list:\n%s", text)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(fmt.Sprintf(`(?m)^one  running  pid %d  up \S+  qemu-launch %d$`, one.qemuPid(), one.cmd.Process.Pid)),
		regexp.MustCompile(fmt.Sprintf(`(?m)^two  running  pid %d  up \S+  qemu-launch %d$`, two.qemuPid(), two.cmd.Process.Pid)),
		regexp.MustCompile(`(?m)^  tap one-n0 +bridge br-a +linux-bridge +guest MAC [0-9a-f:]{17} +host MAC fe:`),
		regexp.MustCompile(`(?m)^  tap two-n0 +bridge br-b +linux-bridge +guest MAC [0-9a-f:]{17} +host MAC fe:`),
		regexp.MustCompile(`(?m)^  thread \d+ +CPU 0/TCG +CPUs 0 +SCHED_OTHER$`),
		regexp.MustCompile(fmt.Sprintf(`(?m)^ghost  stale  qemu-launch %d is gone$`, gone.Process.Pid)),
		regexp.MustCompile(`(?m)^  tap ghost-n0 +bridge br-a +stale record ` + regexp.QuoteMeta(staleFile) + `$`),
		regexp.MustCompile(`(?m)^2 running, 1 stale `),
	} {
		if !want.MatchString(text) {
			t.Errorf("--list lacks a line matching %s", want)
		}
	}

	var vms []qlaunch.ListedVM
	if err := json.Unmarshal([]byte(list("--list", "--json")), &vms); err != nil {
		t.Fatal(err)
	}
	byName := map[string]qlaunch.ListedVM{}
	for _, v := range vms {
		byName[v.Name] = v
	}
	if len(vms) != 3 {
		t.Errorf("--list --json: %d VMs, want 3 (one, two, ghost)", len(vms))
	}
	for _, c := range []struct {
		name, bridge string
		l            *launch
	}{{"one", "br-a", one}, {"two", "br-b", two}} {
		v := byName[c.name]
		if v.State != qlaunch.StateRunning || v.PID != c.l.qemuPid() || v.LauncherPID != c.l.cmd.Process.Pid {
			t.Errorf("%s: state %q pid %d launcher %d, want running, %d, %d", c.name, v.State, v.PID, v.LauncherPID, c.l.qemuPid(), c.l.cmd.Process.Pid)
		}
		if len(v.NICs) != 1 || v.NICs[0].Tap != c.name+"-n0" || v.NICs[0].Bridge != c.bridge || v.NICs[0].Port != "linux-bridge" || v.NICs[0].GuestMAC == "" {
			t.Errorf("%s: NICs %+v, want %s-n0 on Linux bridge %s with the guest's MAC", c.name, v.NICs, c.name, c.bridge)
		}
		if len(v.Threads) == 0 {
			t.Errorf("%s: no threads", c.name)
		}
	}
	for _, th := range byName["two"].Threads {
		if th.CPUs != "0" || th.Policy != "SCHED_OTHER" {
			t.Errorf("two: thread %d %q on CPUs %s under %s, want CPU 0 (--cpus 0) under SCHED_OTHER", th.TID, th.Name, th.CPUs, th.Policy)
		}
	}
	if g := byName["ghost"]; g.State != qlaunch.StateStale || g.PID != 0 || len(g.NICs) != 1 || g.NICs[0].Record != staleFile {
		t.Errorf("ghost: %+v, want stale with its record %s", g, staleFile)
	}
	if _, err := os.Stat(staleFile); err != nil {
		t.Errorf("--list touched the stale record: %v", err)
	}
}

// TestListOVS: a VM's tap on an Open vSwitch bridge (the test's own
// userspace datapath, whose ports have no kernel master) is listed on
// that bridge as an Open vSwitch port, as Open vSwitch reports it.
func TestListOVS(t *testing.T) {
	requireQEMU(t)
	nstest.RequireOVS(t)
	ns := nstest.New(t)
	sw := ns.StartOVS(t)
	sw.AddBridge(t, "ovsbr0")
	runDir := filepath.Join(t.TempDir(), "run")
	env := []string{"QEMU_TAP_HELPERS_RUNDIR=" + runDir, "QEMU_OVS_DB=" + sw.DB}
	l := start(t, ns, env, append([]string{"--bridge", "ovsbr0", "--shutdown-timeout", "1s"}, listVMArgs("sw")...)...)
	l.waitFor("READY=1")

	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--list", "--json")
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := ns.Run(cmd); err != nil {
		t.Fatalf("qemu-launch --list --json: %v\n%s", err, errOut.String())
	}
	var vms []qlaunch.ListedVM
	if err := json.Unmarshal([]byte(out.String()), &vms); err != nil {
		t.Fatal(err)
	}
	if len(vms) != 1 || len(vms[0].NICs) != 1 {
		t.Fatalf("--list --json: %s, want one VM with one NIC", out.String())
	}
	if n := vms[0].NICs[0]; n.Tap != "sw-n0" || n.Bridge != "ovsbr0" || n.Port != "openvswitch" {
		t.Errorf("NIC %+v, want sw-n0 on Open vSwitch bridge ovsbr0", n)
	}
}

// TestListPlanted: entries planted in the run directory, a FIFO and a
// symlink as a record and as a VM lock, neither hang --list (run as
// root) nor have it read what the symlinks point at.
func TestListPlanted(t *testing.T) {
	ns := nstest.New(t)
	runDir := filepath.Join(t.TempDir(), "run")
	// The directory as the helpers make it, kept by a record written by
	// hand.
	dir := filepath.Dir(ns.PlantRecord(t, runDir, "plain-n0", "[Interface]\nBridge=br-a\n"))
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("[Interface]\nBridge=br-a\nVMName=followed\n# qemu-launch pid=1 start=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"link-n0.conf", "vm.link.lock"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"fifo-n0.conf", "vm.fifo.lock"} {
		if err := unix.Mkfifo(filepath.Join(dir, name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(nstest.Binaries(t), "qemu-launch"), "--list", "--json")
	cmd.Env = append(os.Environ(), "QEMU_TAP_HELPERS_RUNDIR="+runDir)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := ns.Run(cmd); err != nil {
		t.Fatalf("qemu-launch --list --json: %v (%v)\n%s", err, ctx.Err(), errOut.String())
	}
	if strings.Contains(out.String(), "followed") {
		t.Errorf("--list followed a symlink:\n%s", out.String())
	}
}
