package kvm

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

func TestCheck(t *testing.T) {
	const (
		nested = "processor\t: 0\nflags\t\t: fpu vme sse2 hypervisor avx2\n"
		vmx    = "processor\t: 0\nflags\t\t: fpu vme vmx sse2 avx2\n"
		svm    = "processor\t: 0\nflags\t\t: fpu svm sse2\n"
	)
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // "" for usable
	}{
		{"no device", map[string]string{CPUInfoPath: vmx}, "there is no /dev/kvm"},
		{"nested off", map[string]string{DevicePath: "", CPUInfoPath: nested},
			"the CPU shows no virtualization extensions although /dev/kvm exists (no vmx or svm in /proc/cpuinfo): this is a virtual machine whose hypervisor does not offer nested virtualization; use -accel tcg"},
		{"vmx", map[string]string{DevicePath: "", CPUInfoPath: vmx}, ""},
		{"svm", map[string]string{DevicePath: "", CPUInfoPath: svm}, ""},
		{"no flags line", map[string]string{DevicePath: "", CPUInfoPath: "processor : 0\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(nstest.Tree(t, tc.files), false)
			var p *Problem
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v, want nil", err)
			case tc.want != "" && !errors.As(err, &p):
				t.Fatalf("Check: %v, want a *Problem", err)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Check: %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestThisHost runs the check on this host and holds it to the CPU's
// flags: a /dev/kvm without vmx or svm (the build machines: nested
// virtualization off, QEMU's guest hangs) must be reported.
func TestThisHost(t *testing.T) {
	flags, err := cpuFlags("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat("/dev/kvm")
	err = Check("/", os.Geteuid() == 0)
	t.Logf("Check: %v", err)
	if statErr == nil && flags != nil && !flags["vmx"] && !flags["svm"] {
		if err == nil || !strings.Contains(err.Error(), "no virtualization extensions") {
			t.Fatalf("/dev/kvm without vmx or svm: Check = %v, want the nested-virtualization problem", err)
		}
	}
	if statErr != nil && err == nil {
		t.Fatal("no /dev/kvm, yet Check found KVM usable")
	}
}

// TestProbe runs the test vCPU on this host's /dev/kvm: it must end, with
// nil or a *Problem, never another error or a hang.
func TestProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("opening /dev/kvm needs root here")
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Log("no /dev/kvm: TestThisHost checks that this is reported")
		return
	}
	err := runHLT("/dev/kvm", probeTimeout)
	var p *Problem
	if err != nil && !errors.As(err, &p) {
		t.Fatalf("runHLT: %v, want nil or a *Problem", err)
	}
	t.Logf("runHLT: %v", err)
}
