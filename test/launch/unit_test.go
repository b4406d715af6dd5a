package launch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/vmconf"
)

const unitPath = "../../packaging/systemd/qemu-launch@.service"

// The template unit passes systemd-analyze verify without a word on
// stderr (it may exit 0 and still complain), with ExecStart pointing at
// the qemu-launch just built.
func TestUnitVerifies(t *testing.T) {
	nstest.RequireTool(t, "systemd-analyze", "systemd")
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	const exec0 = "ExecStart=/usr/bin/qemu-launch --config /etc/qemu-launch/%i.conf\n"
	if !bytes.Contains(unit, []byte(exec0)) {
		t.Fatalf("%s lacks %q", unitPath, exec0)
	}
	for _, want := range []string{"Type=notify\n", "KillMode=mixed\n"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("%s lacks %q", unitPath, want)
		}
	}
	bin := filepath.Join(nstest.Binaries(t), "qemu-launch")
	dir := t.TempDir()
	unit = bytes.Replace(unit, []byte("/usr/bin/qemu-launch"), []byte(bin), 1)
	if err := os.WriteFile(filepath.Join(dir, "qemu-launch@.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", "./qemu-launch@rt.service")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
}

// The example VM file is the seed, and qemu-launch --dry-run --config
// shows it rewritten for this QEMU.
func TestExampleDryRun(t *testing.T) {
	requireQEMU(t)
	dir := nstest.TrustedDir(t)
	// The example names CPUs 2 and 3; fit it to CPUs 0 and 1.
	data, err := os.ReadFile("../../packaging/examples/vm.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("HostCPUs=2,3", "HostCPUs=0,1", "Affinity=2\n", "Affinity=0\n", "Affinity=0x8", "Affinity=0x2").Replace(string(data))
	conf := filepath.Join(dir, "rt.conf")
	if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vmconf.Load(conf); err != nil {
		t.Fatal(err)
	}
	bin := nstest.Binaries(t)
	cmd := exec.Command(filepath.Join(bin, "qemu-launch"), "--dry-run", "--config", conf)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "QEMU_TAP_HELPERS_RUNDIR=/run/t"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qemu-launch --dry-run --config: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := []string{
		"qemu-system-x86_64 -name guest=rt,process=rt-kvm -accel kvm -m 512M -smp 2 -overcommit mem-lock=on " +
			"-no-reboot -nographic -kernel /var/lib/qemu-launch/rt/bzImage -append 'root=/dev/vda console=ttyS0,115200' " +
			"-drive file=/var/lib/qemu-launch/rt/guest.ext4,if=virtio,format=raw -device e1000,netdev=vm0,mac=" + qemuargs.GuestMAC("rt", "vm0").String() + " " +
			"-netdev tap,id=vm0,script=" + bin + "/qemu-ifup,downscript=" + bin + "/qemu-ifdown,ifname=rt-vm0 " +
			"-device virtio-rng-pci -rtc base=utc,clock=host -S " +
			"-chardev socket,id=qemu-launch-qmp,fd=3 -mon chardev=qemu-launch-qmp,mode=control",
		"start QEMU with every thread on CPUs 0-1",
		"write " + filepath.Join(nstest.OwnRunDir(t, "/run/t"), "rt-vm0.conf") + " for qemu-ifup (netdev vm0): Bridge=br0 GuestMAC=" + qemuargs.GuestMAC("rt", "vm0").String() + " VMName=rt",
		"put the thread of vCPU 0 on CPUs 0 under SCHED_OTHER (QMP query-cpus-fast, then read back)",
		"put the thread of vCPU 1 on CPUs 1 under SCHED_FIFO priority 80 (QMP query-cpus-fast, then read back)",
		"resume the guest (QMP cont)",
		"on SIGTERM, SIGINT or SIGHUP: QMP system_powerdown, SIGTERM after 1m0s, SIGKILL 10s later",
		"after QEMU exits: run " + bin + "/qemu-ifdown rt-vm0 if its record is still there",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("dry run:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
