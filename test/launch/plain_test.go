package launch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// The plain example VM file runs as shipped on any host: no CPUs to have,
// no real-time host to check, TCG; its dry run is the README's first VM.
func TestPlainExampleDryRun(t *testing.T) {
	requireQEMU(t)
	// Root reads a VM file only from a directory only root may write,
	// which a checkout need not be.
	data, err := os.ReadFile("../../packaging/examples/plain.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(nstest.TrustedDir(t), "plain.conf")
	if err := os.WriteFile(conf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := nstest.Binaries(t)
	cmd := exec.Command(filepath.Join(bin, "qemu-launch"), "--dry-run", "--config", conf)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "QEMU_TAP_HELPERS_RUNDIR=/run/t"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() != 0 {
		t.Fatalf("qemu-launch --dry-run --config plain.conf: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{
		"qemu-system-x86_64 -name guest=vm1 -accel tcg -m 256M -nographic -kernel /var/lib/qemu-launch/vm1/vmlinuz -initrd /var/lib/qemu-launch/vm1/login.gz -append 'console=ttyS0 ip=192.168.122.10::192.168.122.1:255.255.255.0' -device virtio-net-pci,netdev=n0,mac=",
		",ifname=vm1-n0 ",
		"for qemu-ifup (netdev n0): Bridge=virbr0 ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
}
