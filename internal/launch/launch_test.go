package launch

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf/ifconftest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

func testConfig() (*Config, *bytes.Buffer) {
	var out bytes.Buffer
	c := &Config{Stdout: &out, Stderr: &out,
		Getenv:  func(k string) string { return map[string]string{ifconf.EnvRunDir: "/run/t"}[k] },
		Environ: func() []string { return nil }}
	return c, &out
}

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		want Config
	}{
		{
			[]string{"--cpus", "0-1", "--ifup", "/u", "--ifdown", "/d", "--bridge", "br0", "--bridge", "vm1=br1",
				"--shutdown-timeout", "5s", "-v", "--", "qemu-system-x86_64", "-m", "64", "--", "-x"},
			Config{Binary: "qemu-system-x86_64", Args: []string{"-m", "64", "--", "-x"}, CPUs: cpuset.Of(0, 1),
				IfUp: "/u", IfDown: "/d", Bridge: "br0", Settings: map[string]ifconf.Settings{"vm1": ifconftest.Settings(t, "Bridge=br1")},
				ShutdownTimeout: 5 * time.Second, QMPTimeout: DefaultQMPTimeout, Verbose: true},
		},
		{
			[]string{"--emulator-cpus", "0", "--iothread-cpus", "io0=1", "--iothread-cpus", "io1=0-1", "--check-host", "--strict", "q"},
			Config{Binary: "q", Args: []string{}, EmulatorCPUs: cpuset.Of(0),
				IOThreadCPUs: map[string]cpuset.Set{"io0": cpuset.Of(1), "io1": cpuset.Of(0, 1)}, CheckHost: true, Strict: true,
				ShutdownTimeout: DefaultShutdownTimeout, QMPTimeout: DefaultQMPTimeout},
		},
		{
			// Flags end at the binary: QEMU's -S is QEMU's.
			[]string{"--dry-run", "qemu", "-S", "--cpus", "9"},
			Config{Binary: "qemu", Args: []string{"-S", "--cpus", "9"}, DryRun: true,
				ShutdownTimeout: DefaultShutdownTimeout, QMPTimeout: DefaultQMPTimeout},
		},
	}
	for _, tt := range tests {
		c, _ := testConfig()
		done, err := Parse(tt.args, c)
		if err != nil || done {
			t.Errorf("Parse(%q) = %v, %v", tt.args, done, err)
			continue
		}
		if tt.want.IfUp == "" {
			tt.want.IfUp, tt.want.IfDown = c.IfUp, c.IfDown
		}
		if diff := cmp.Diff(tt.want, *c, cmp.Comparer(cpuset.Set.Equal),
			cmp.FilterPath(func(p cmp.Path) bool {
				switch p.Last().String() {
				case ".Stdin", ".Stdout", ".Stderr", ".Getenv", ".Environ", ".hostRoot":
					return true
				}
				return false
			}, cmp.Ignore())); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		args  []string
		want  string
		usage bool
	}{
		{nil, "no QEMU binary given", true},
		{[]string{"--cpus", "x", "q"}, `"x" for --cpus: CPU list "x": "x" is not a CPU number`, true},
		{[]string{"--cpus"}, "flag needs an argument: --cpus", true},
		{[]string{"--bridge", "a=x/y", "q"}, "invalid interface name", true},
		{[]string{"--bridge", "br0", "--bridge", "br1", "q"}, "given twice", true},
		{[]string{"--bridge", "a=br0", "--bridge", "a=br1", "q"}, "netdev a given twice", true},
		{[]string{"--shutdown-timeout", "0s", "q"}, "timeouts must be positive", true},
		{[]string{"--nope", "q"}, "flag provided but not defined: --nope", true},
		{[]string{"--config", "x.conf", "q"}, "--config takes no QEMU command line", true},
		{[]string{"--config", "/nonexistent/vm.conf"}, "reading VM file", false},
		{[]string{"--emulator-cpus", "0-", "q"}, `"0-" for --emulator-cpus: CPU list`, true},
		{[]string{"--iothread-cpus", "io0", "q"}, "want ID=LIST", true},
		{[]string{"--iothread-cpus", "=1", "q"}, "want ID=LIST", true},
		{[]string{"--iothread-cpus", "a=1", "--iothread-cpus", "a=0", "q"}, "CPUs for I/O thread a given twice", true},
	}
	for _, tt := range tests {
		c, _ := testConfig()
		_, err := Parse(tt.args, c)
		var uerr *usageError
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.As(err, &uerr) != tt.usage {
			t.Errorf("Parse(%q) = %v, want error containing %q (usage error: %v)", tt.args, err, tt.want, tt.usage)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, a := range []string{"--help", "-h", "--version"} {
		c, out := testConfig()
		done, err := Parse([]string{a}, c)
		if !done || err != nil || out.Len() == 0 {
			t.Errorf("Parse(%s) = %v, %v, output %q", a, done, err, out)
		}
	}
}

// The seed's command, fitted to CPUs 0 and 1, as a dry run: QEMU's command
// line on the first line, then what the launcher does itself.
func TestDryRunSeed(t *testing.T) {
	needCPUs01(t)
	c, out := testConfig()
	c.Binary, c.IfUp, c.IfDown, c.CPUs, c.DryRun = "/nonexistent/qemu", "/h/qemu-ifup", "/h/qemu-ifdown", cpuset.Of(0, 1), true
	c.Bridge = "br0"
	// -vcpu and -realtime make the launcher probe the binary: use the
	// seed without them here (the rewrite has its own tests) but keep
	// everything else.
	c.Args = []string{"-accel", "tcg", "-m", "512", "-smp", "2", "-name", "rt,process=rt-kvm", "-no-reboot",
		"-nographic", "-append", "root=/dev/vda console=ttyS0,115200", "-kernel", "bzImage",
		"-drive", "file=guest.ext4,if=virtio", "-device", "e1000,netdev=vm0", "-netdev", "tap,id=vm0"}
	code, err := Run(context.Background(), c)
	if code != 0 || err != nil {
		t.Fatalf("Run = %d, %v", code, err)
	}
	want := []string{
		"/nonexistent/qemu -accel tcg -m 512 -smp 2 -name rt,process=rt-kvm -no-reboot -nographic " +
			"-append 'root=/dev/vda console=ttyS0,115200' -kernel bzImage -drive file=guest.ext4,if=virtio " +
			"-device e1000,netdev=vm0,mac=" + qemuargs.GuestMAC("rt", "vm0").String() + " -netdev tap,id=vm0,script=/h/qemu-ifup,downscript=/h/qemu-ifdown,ifname=rt-vm0 " +
			"-chardev socket,id=qemu-launch-qmp,fd=3 -mon chardev=qemu-launch-qmp,mode=control",
		"start QEMU with every thread on CPUs 0-1",
		"write " + filepath.Join(nstest.OwnRunDir(t, "/run/t"), "rt-vm0.conf") + " for qemu-ifup (netdev vm0): Bridge=br0 GuestMAC=" + qemuargs.GuestMAC("rt", "vm0").String() + " VMName=rt",
		"on SIGTERM, SIGINT or SIGHUP: QMP system_powerdown, SIGTERM after 1m0s, SIGKILL 10s later",
		"after QEMU exits: run /h/qemu-ifdown rt-vm0 if its record is still there",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
}

func TestPrepareRefuses(t *testing.T) {
	online, err := cpuset.Online()
	if err != nil {
		t.Fatal(err)
	}
	cpus := online.CPUs()
	past := cpus[len(cpus)-1] + 1
	offline := " not online (online: " + online.String() + ")"
	first := cpuset.Of(cpus[0])
	type refusal struct {
		cpus, emulator cpuset.Set
		io             map[string]cpuset.Set
		want           string
	}
	tests := []refusal{
		{cpus: cpuset.Of(0, past), want: "--cpus " + cpuset.Of(0, past).String() + ": CPU " + cpuset.Of(past).String() + offline},
		{emulator: cpuset.Of(past), want: "--emulator-cpus " + cpuset.Of(past).String() + ": CPU " + cpuset.Of(past).String() + offline},
		{io: map[string]cpuset.Set{"io0": cpuset.Of(past)}, want: "--iothread-cpus io0 " + cpuset.Of(past).String() + ": CPU " + cpuset.Of(past).String() + offline},
		{io: map[string]cpuset.Set{"io9": first}, want: "--iothread-cpus io9: the command has no -object iothread,id=io9"},
	}
	if len(cpus) > 1 {
		second := cpuset.Of(cpus[1])
		tests = append(tests,
			refusal{cpus: first, emulator: online, want: "--emulator-cpus " + online.String() + ": CPU " + online.Minus(first).String() + " is outside --cpus " + first.String()},
			refusal{cpus: second, io: map[string]cpuset.Set{"io0": first}, want: "--iothread-cpus io0=" + first.String() + ": CPU " + first.String() + " is outside --cpus " + second.String()},
		)
	}
	for _, tt := range tests {
		c, _ := testConfig()
		c.Binary, c.CPUs, c.EmulatorCPUs, c.IOThreadCPUs = "/nonexistent/qemu", tt.cpus, tt.emulator, tt.io
		c.Args = []string{"-object", "iothread,id=io0"}
		_, err = Prepare(context.Background(), c)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Prepare = %v, want %q", err, tt.want)
		}
	}
}

// Emulator and I/O thread placement in a dry run: QEMU starts paused on
// the emulator CPUs, and the launcher says what it places.
func TestDryRunPlacement(t *testing.T) {
	needCPUs01(t)
	c, out := testConfig()
	c.Binary, c.DryRun, c.CPUs, c.EmulatorCPUs = "/nonexistent/qemu", true, cpuset.Of(0, 1), cpuset.Of(0)
	c.IOThreadCPUs = map[string]cpuset.Set{"io0": cpuset.Of(1)}
	c.Args = []string{"-accel", "tcg", "-smp", "2", "-object", "iothread,id=io0"}
	if code, err := Run(context.Background(), c); code != 0 || err != nil {
		t.Fatalf("Run = %d, %v", code, err)
	}
	want := []string{
		"/nonexistent/qemu -accel tcg -smp 2 -object iothread,id=io0 -S " +
			"-chardev socket,id=qemu-launch-qmp,fd=3 -mon chardev=qemu-launch-qmp,mode=control",
		"start QEMU on CPUs 0, the emulator CPUs: its main loop, RCU and worker threads, and the threads they start later, inherit them",
		"put the threads of vCPUs 0-1 (no -vcpu affinity) on CPUs 0-1 (QMP query-cpus-fast)",
		"put I/O thread io0 on CPUs 1 (QMP query-iothreads, then read back)",
		"read every thread of QEMU back from /proc: the vCPUs and placed I/O threads where put, all others on CPUs 0",
		"resume the guest (QMP cont)",
		"after the guest resumes: read every thread back again, and put threads found elsewhere where they belong",
		"on SIGTERM, SIGINT or SIGHUP: QMP system_powerdown, SIGTERM after 1m0s, SIGKILL 10s later",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
}

// Where each thread belongs: vCPUs and placed I/O threads by id, every
// other thread (including ones unknown to QMP) on the emulator CPUs.
func TestPlacement(t *testing.T) {
	r := &run{Plan: &Plan{
		Result:       &qemuargs.Result{VCPUs: 3, Pins: []qemuargs.Pin{{VCPU: 1, CPUs: cpuset.Of(3), Prio: 80}, {VCPU: 2, Prio: 1}}},
		EmulatorCPUs: cpuset.Of(0),
		IOThreadCPUs: map[string]cpuset.Set{"io0": cpuset.Of(1)},
		VCPUCPUs:     cpuset.Of(0, 1, 2, 3),
	}, vcpuTIDs: map[int]int{0: 100, 1: 101, 2: 102}, ioTIDs: map[string]int{"io0": 200, "io1": 201}}
	pl := r.placement()
	for _, tt := range []struct {
		tid  int
		want place
	}{
		{100, place{"vCPU 0", cpuset.Of(0, 1, 2, 3)}},
		{101, place{"vCPU 1", cpuset.Of(3)}},
		{102, place{"vCPU 2", cpuset.Of(0, 1, 2, 3)}},
		{200, place{"I/O thread io0", cpuset.Of(1)}},
		{201, place{"I/O thread io1", cpuset.Set{}}},
		{99, place{"emulator", cpuset.Of(0)}},
		{300, place{"emulator", cpuset.Of(0)}},
	} {
		got := pl.of(tt.tid)
		if got.what != tt.want.what || !got.cpus.Equal(tt.want.cpus) {
			t.Errorf("thread %d: %s on %s, want %s on %s", tt.tid, got.what, got.cpus, tt.want.what, tt.want.cpus)
		}
	}
	// Without emulator placement, vCPUs without affinity stay unplaced.
	r.EmulatorCPUs = cpuset.Set{}
	if got := r.placement().of(100); !got.cpus.Empty() {
		t.Errorf("vCPU 0 without emulator placement: %s", got.cpus)
	}
}

// The stages of a shutdown on a process that ignores SIGTERM: powerdown,
// SIGTERM when the guest does not power down, SIGKILL when SIGTERM does
// nothing.
func TestStopperEscalates(t *testing.T) {
	cmd := exec.Command("sh", "-c", "trap '' TERM; echo ready; exec sleep 600")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil { // the trap is in place
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	powerdowns := 0
	s := stopper{proc: cmd.Process, shutdown: time.Millisecond, term: time.Millisecond, powerdown: func() error { powerdowns++; return nil }}
	var said []string
	said = append(said, s.next())
	for done := false; !done; {
		select {
		case <-exited:
			done = true
		case <-s.timer():
			said = append(said, s.next())
		}
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("process ended with %v, want killed by SIGKILL", cmd.ProcessState)
	}
	want := []string{
		"asked the guest to power down (QMP system_powerdown); SIGTERM in 1ms",
		"sent SIGTERM to QEMU; SIGKILL in 1ms",
		"sent SIGKILL to QEMU",
	}
	if diff := cmp.Diff(want, said); diff != "" || powerdowns != 1 {
		t.Errorf("stages (-want +got):\n%s\npowerdowns: %d", diff, powerdowns)
	}
}

// A powerdown that fails (QMP gone) goes straight to SIGTERM, and a
// process that already exited is no error.
func TestStopperPowerdownFails(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	s := stopper{proc: cmd.Process, shutdown: time.Hour, term: time.Hour, powerdown: func() error { return errors.New("no QMP") }}
	got := s.next()
	if want := "powerdown failed (no QMP); sent SIGTERM to QEMU; SIGKILL in 1h0m0s"; got != want {
		t.Errorf("next = %q, want %q", got, want)
	}
	if got := s.next(); got != "sent SIGKILL to QEMU" {
		t.Errorf("next = %q", got)
	}
}

// The host check before a start: warnings on stderr, a refusal under
// --strict before anything starts. The host is a sample tree: a user's
// 8 MiB lock limit without CAP_IPC_LOCK, and a guest asking to lock 2 GiB.
func TestHostCheckAtStart(t *testing.T) {
	root := nstest.Tree(t, map[string]string{
		"sys/devices/system/cpu/isolated":     "\n",
		"proc/sys/kernel/sched_rt_runtime_us": "950000\n",
		"proc/sys/kernel/sched_rt_period_us":  "1000000\n",
		"proc/self/limits":                    "Max locked memory         8388608              8388608              bytes\n",
		"proc/self/status":                    "CapEff:\t0000000000000000\n",
	})
	const warning = "qemu-launch: warning: memory lock: the guest's 2 GiB cannot be locked under RLIMIT_MEMLOCK 8 MiB, so QEMU will fail to start: raise it (LimitMEMLOCK=infinity in the unit, ulimit -l unlimited)\n"
	warnsThenRefuses(t, root, []string{"-m", "2G", "-overcommit", "mem-lock=on"}, warning)
}

// warnsThenRefuses dry-runs QEMU with args on the host tree root, with and
// without --strict: both print exactly the warning on stderr; the dry run
// goes on without --strict and is refused before anything under it.
func warnsThenRefuses(t *testing.T, root string, args []string, warning string) {
	t.Helper()
	for _, strict := range []bool{false, true} {
		c, out := testConfig()
		var stderr bytes.Buffer
		c.Stderr, c.hostRoot = &stderr, root
		c.Binary, c.DryRun, c.Strict = "/nonexistent/qemu", true, strict
		c.Args = args
		code, err := Run(context.Background(), c)
		if stderr.String() != warning {
			t.Errorf("strict %v: stderr %q, want %q", strict, stderr.String(), warning)
		}
		switch {
		case !strict && (code != 0 || err != nil || out.Len() == 0):
			t.Errorf("Run = %d, %v (output %q), want the dry run despite the warning", code, err, out)
		case strict && (code != 1 || err == nil || !strings.Contains(err.Error(), "refused under --strict") || out.Len() != 0):
			t.Errorf("Run --strict = %d, %v (output %q), want a refusal before anything", code, err, out)
		}
	}
}

// needCPUs01 skips a test that places threads on CPUs 0 and 1 on a host
// without both online.
func needCPUs01(t *testing.T) {
	t.Helper()
	online, err := cpuset.Online()
	if err != nil {
		t.Fatal(err)
	}
	if !online.Has(1) {
		t.Skip("needs CPUs 0 and 1 online; this host has " + online.String())
	}
}
