package vmconf

import (
	"strconv"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// Args is the QEMU command line the file describes, before qemu-launch's
// rewrite.
func (vm *VM) Args() []string {
	var a []string
	add := func(w ...string) { a = append(a, w...) }
	if vm.Name != "" {
		n := "guest=" + esc(vm.Name)
		if vm.Process != "" {
			n += ",process=" + esc(vm.Process)
		}
		add("-name", n)
	}
	if vm.UUID != "" {
		add("-uuid", vm.UUID)
	}
	if vm.Machine != "" {
		add("-machine", vm.Machine)
	}
	if vm.Accel != "" {
		add("-accel", vm.Accel)
	}
	if vm.CPUModel != "" {
		add("-cpu", vm.CPUModel)
	}
	if vm.Memory != "" {
		add("-m", vm.Memory)
	}
	if vm.VCPUs > 0 {
		add("-smp", strconv.Itoa(vm.VCPUs))
	}
	if vm.MemoryLock != "" {
		add("-realtime", "mlock="+vm.MemoryLock)
	}
	for _, v := range vm.VCPU {
		s := strconv.Itoa(v.Index)
		if !v.Affinity.Empty() {
			s += ",affinity=" + v.Affinity.Mask()
		}
		add("-vcpu", s+",prio="+strconv.Itoa(v.Priority))
	}
	for _, io := range vm.IO {
		add("-object", "iothread,id="+io.ID)
	}
	if vm.NoReboot {
		add("-no-reboot")
	}
	if !vm.Graphics {
		add("-nographic")
	}
	if vm.Paused {
		add("-S")
	}
	if vm.Kernel != "" {
		add("-kernel", vm.Kernel)
	}
	if vm.Initrd != "" {
		add("-initrd", vm.Initrd)
	}
	if vm.Append != "" {
		add("-append", vm.Append)
	}
	for _, d := range vm.Drives {
		s := "file=" + esc(d.File)
		if d.Interface != "" {
			s += ",if=" + d.Interface
		}
		if d.Format != "" {
			s += ",format=" + d.Format
		}
		if d.Options != "" {
			s += "," + d.Options
		}
		add("-drive", s)
	}
	for _, n := range vm.NICs {
		model := n.Model
		if model == "" {
			model = "virtio-net-pci"
		}
		dev := model + ",netdev=" + n.ID
		if n.MACAddress != "" {
			dev += ",mac=" + n.MACAddress
		}
		nd := "tap,id=" + n.ID
		if n.Ifname != "" {
			nd += ",ifname=" + n.Ifname
		}
		if n.Script != "" {
			nd += ",script=" + esc(n.Script)
		}
		if n.DownScript != "" {
			nd += ",downscript=" + esc(n.DownScript)
		}
		add("-device", dev, "-netdev", nd)
	}
	return append(a, vm.Extra...)
}

// TapSettings are the per-netdev settings for qemu-ifup.
func (vm *VM) TapSettings() map[string]ifconf.Settings {
	m := map[string]ifconf.Settings{}
	for _, n := range vm.NICs {
		if !n.Settings.IsZero() {
			m[n.ID] = n.Settings
		}
	}
	return m
}

// IOThreadCPUs are the CPUs of the I/O threads placed apart, by id.
func (vm *VM) IOThreadCPUs() map[string]cpuset.Set {
	m := map[string]cpuset.Set{}
	for _, io := range vm.IO {
		if !io.CPUs.Empty() {
			m[io.ID] = io.CPUs
		}
	}
	return m
}

func esc(v string) string { return strings.ReplaceAll(v, ",", ",,") }
