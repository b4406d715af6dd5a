package launch

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// Mistakes qemu-launch can see end with one line of its own before QEMU
// starts: never QEMU's "network script ... failed", no tap, no record.
func TestRefusedBeforeQEMU(t *testing.T) {
	requireQEMU(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "virbr0", 0)
	ns.AddBridge(t, "br-lab", 0)
	tap := []string{"-accel", "tcg", "-display", "none", "-nodefaults", "-m", "64", "-name", "pc",
		"-netdev", "tap,id=n0", "-device", "e1000,netdev=n0"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bridge misspelt", append([]string{"--bridge", "virbrO", qemu}, tap...), 1,
			"qemu-launch: netdev n0: bridge virbrO (from --bridge) not found; Linux bridges here: br-lab, virbr0; QEMU not started\n"},
		{"not a bridge", append([]string{"--bridge", "n0=lo", qemu}, tap...), 1,
			"qemu-launch: netdev n0: bridge lo (from --bridge): lo is not a bridge (device); QEMU not started\n"},
		{"QEMU not installed", append([]string{"--bridge", "virbr0", "qemu-system-x86_46"}, tap...), 127,
			"qemu-launch: QEMU binary qemu-system-x86_46: executable file not found in $PATH: name its path, or install it (Debian: apt install qemu-system-x86); QEMU not started\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := filepath.Join(t.TempDir(), "run")
			cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), tc.args...)
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "QEMU_TAP_HELPERS_RUNDIR=" + runDir}
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			code, err := nstest.ExitStatus(ns.Run(cmd))
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || out.String() != tc.want {
				t.Errorf("exit %d, output %q; want %d and %q", code, out.String(), tc.code, tc.want)
			}
			if taps := ns.Taps(t); len(taps) != 0 {
				t.Errorf("taps left: %q", taps)
			}
			if left, _ := filepath.Glob(filepath.Join(runDir, "*", "*.conf")); len(left) != 0 {
				t.Errorf("records left: %q", left)
			}
		})
	}
}

// A VM file's CPUs that are not online are refused naming the file, the
// line and the key (the user typed no --cpus), with every other error of
// the file in the same run.
func TestVMFileErrors(t *testing.T) {
	conf := filepath.Join(nstest.TrustedDir(t), "rt.conf")
	const file = "[VM]\nName=rt\nHostCPUs=1000,1001\nMemroy=512M\n\n[NIC]\nBrigde=virbr0\n"
	if err := os.WriteFile(conf, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--config", conf)
	cmd.Env = []string{"QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(t.TempDir(), "run")}
	out, _ := cmd.CombinedOutput()
	want := "qemu-launch: " + conf + ":4: unknown key Memroy= in [VM]; did you mean Memory=?\n" +
		"qemu-launch: " + conf + ":7: unknown key Brigde= in [NIC]; did you mean Bridge=?\n"
	if code := cmd.ProcessState.ExitCode(); code != 1 || string(out) != want {
		t.Errorf("exit %d, output:\n%s\nwant 1 and:\n%s", code, out, want)
	}

	// The file fixed but for its CPUs.
	if err := os.WriteFile(conf, []byte("[VM]\nName=rt\nHostCPUs=1000,1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--config", conf)
	cmd.Env = []string{"QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(t.TempDir(), "run")}
	out, _ = cmd.CombinedOutput()
	prefix := "qemu-launch: " + conf + ":3: HostCPUs=1000-1001: CPUs 1000-1001 not online (online: "
	suffix := "); change HostCPUs= or override it with --cpus\n"
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.HasPrefix(string(out), prefix) || !strings.HasSuffix(string(out), suffix) || strings.Count(string(out), "\n") != 1 {
		t.Errorf("exit %d, output %q; want 1 and one line %q...%q", code, out, prefix, suffix)
	}
}

// TestCheckHostKVM runs --check-host for a KVM guest on this host. Where
// /dev/kvm exists but the CPU shows no vmx or svm (the build machines:
// nested virtualization off, a KVM guest hangs after the firmware) it
// must say so and what to do; where /dev/kvm is missing, too.
func TestCheckHostKVM(t *testing.T) {
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`(?m)^flags\s*:.*\b(vmx|svm)\b`)
	_, devErr := os.Stat("/dev/kvm")
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--check-host", "--", qemu, "-enable-kvm", "-m", "64")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "QEMU_TAP_HELPERS_RUNDIR=" + filepath.Join(t.TempDir(), "run")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-launch --check-host: %v\n%s", err, out)
	}
	t.Logf("qemu-launch --check-host -- %s -enable-kvm:\n%s", qemu, out)
	const advice = "use -accel tcg (Accel=tcg in a VM file) instead of -enable-kvm or -accel kvm\n"
	switch {
	case devErr != nil:
		if !strings.Contains(string(out), "there is no /dev/kvm") || !strings.HasSuffix(string(out), advice) {
			t.Errorf("no /dev/kvm, and --check-host does not say so with the advice")
		}
	case !flags.Match(cpuinfo):
		want := "warning: kvm: the VM asks for KVM, but the CPU shows no virtualization extensions although /dev/kvm exists (no vmx or svm in /proc/cpuinfo)"
		if !strings.Contains(string(out), want) || !strings.HasSuffix(string(out), advice) {
			t.Errorf("/dev/kvm without vmx or svm: --check-host lacks %q ... %q", want, advice)
		}
	default:
		if strings.Contains(string(out), "no virtualization extensions") {
			t.Errorf("a CPU with vmx or svm, and the check blames its flags")
		}
	}
}
