package launch

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
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
				IfUp: "/u", IfDown: "/d", Bridge: "br0", Settings: map[string]ifconf.Settings{"vm1": settings(t, "Bridge=br1")},
				ShutdownTimeout: 5 * time.Second, QMPTimeout: DefaultQMPTimeout, Verbose: true},
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
				case ".Stdin", ".Stdout", ".Stderr", ".Getenv", ".Environ":
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
	online, err := cpuset.Online()
	if err != nil {
		t.Fatal(err)
	}
	if !online.Has(1) {
		t.Skip("needs CPUs 0 and 1 online; this host has " + online.String())
	}
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
			"-device e1000,netdev=vm0 -netdev tap,id=vm0,script=/h/qemu-ifup,downscript=/h/qemu-ifdown,ifname=rt-vm0 " +
			"-chardev socket,id=qemu-launch-qmp,fd=3 -mon chardev=qemu-launch-qmp,mode=control",
		"start QEMU with every thread on CPUs 0-1",
		"write /run/t/rt-vm0.conf for qemu-ifup (netdev vm0): Bridge=br0",
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
	c, _ := testConfig()
	c.Binary, c.CPUs = "/nonexistent/qemu", cpuset.Of(0, past)
	_, err = Prepare(context.Background(), c)
	want := "--cpus " + c.CPUs.String() + ": CPU " + cpuset.Of(past).String() + " not online (online: " + online.String() + ")"
	if err == nil || err.Error() != want {
		t.Errorf("Prepare = %v, want %q", err, want)
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

// settings builds the settings KEY=VALUE pairs give, as a file would.
func settings(t testing.TB, kvs ...string) ifconf.Settings {
	t.Helper()
	var s ifconf.Settings
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if err := s.Set(k, v, ifconf.Origin{File: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
