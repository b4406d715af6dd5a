package launch

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

func TestWantsKVM(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"-enable-kvm", "-m", "512"}, true},
		{[]string{"--enable-kvm"}, true},
		{[]string{"-accel", "kvm"}, true},
		{[]string{"-accel", "kvm,kernel-irqchip=on"}, true},
		{[]string{"-accel", "accel=kvm"}, true},
		{[]string{"-machine", "q35,accel=kvm:tcg"}, true},
		{[]string{"-M", "pc,accel=tcg"}, false},
		{[]string{"-accel", "tcg"}, false},
		{[]string{"-m", "512", "-nographic"}, false},
		{[]string{"-append", "x", "-accel"}, false},
	} {
		if got := wantsKVM(tc.args); got != tc.want {
			t.Errorf("wantsKVM(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// A VM asking for KVM on a host whose /dev/kvm cannot run a guest (the
// build machines: the device is there, nested virtualization is not):
// --check-host says so and what to do, the start warns, --strict refuses.
// A TCG guest on the same host hears nothing of KVM.
func TestKVMUnusable(t *testing.T) {
	root := nstest.Tree(t, map[string]string{
		"dev/kvm":          "",
		"proc/cpuinfo":     "processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n",
		"proc/self/limits": "Max locked memory         unlimited            unlimited            bytes\n",
		"proc/self/status": "CapEff:\t0000000000000000\n",
	})
	const finding = "kvm: the VM asks for KVM, but the CPU shows no virtualization extensions although /dev/kvm exists (no vmx or svm in /proc/cpuinfo): this is a virtual machine whose hypervisor does not offer nested virtualization, so the guest would hang after the firmware: use -accel tcg (Accel=tcg in a VM file) instead of -enable-kvm or -accel kvm"

	c, out := testConfig()
	c.hostRoot, c.CheckHost = root, true
	c.Binary, c.Args = "/nonexistent/qemu", []string{"-enable-kvm", "-m", "512"}
	if code, err := Run(context.Background(), c); code != 0 || err != nil {
		t.Fatalf("--check-host = %d, %v", code, err)
	}
	if !strings.Contains(out.String(), "warning: "+finding+"\n") {
		t.Errorf("--check-host printed %q, want the line %q", out, finding)
	}

	warnsThenRefuses(t, root, []string{"-accel", "kvm", "-m", "512"}, "qemu-launch: warning: "+finding+"\n")

	c, _ = testConfig()
	var stderr bytes.Buffer
	c.Stderr, c.hostRoot = &stderr, root
	c.Binary, c.DryRun, c.Args = "/nonexistent/qemu", true, []string{"-accel", "tcg"}
	if code, err := Run(context.Background(), c); code != 0 || err != nil || stderr.Len() != 0 {
		t.Errorf("TCG guest: Run = %d, %v, stderr %q; want no word of KVM", code, err, stderr.String())
	}
}
