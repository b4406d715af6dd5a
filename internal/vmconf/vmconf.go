// Package vmconf reads qemu-launch's VM files: one virtual machine
// described in systemd's unit-file syntax, as systemd-nspawn's .nspawn
// files describe a container. A VM file becomes a QEMU command line in
// the vocabulary of the real-time guides (-realtime, -vcpu), which
// qemu-launch then rewrites for the QEMU at hand like any other.
//
//	[VM]
//	Name=rt
//	Memory=512M
//	VCPUs=2
//	HostCPUs=2,3
//	MemoryLock=yes
//	User=qemu
//
//	[VCPU]
//	Index=1
//	Affinity=3
//	Priority=80
//
//	[IOThread]
//	ID=io0
//	CPUs=2
//
//	[NIC]
//	ID=vm0
//	Model=e1000
//	Bridge=br0
package vmconf

import (
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// DefaultBinary is the QEMU run when [VM] has no QEMU=.
const DefaultBinary = "qemu-system-x86_64"

// A VM is a parsed VM file.
type VM struct {
	Binary          string
	Name            string
	Process         string // -name ...,process=
	UUID            string // -uuid
	Machine         string
	Accel           string
	CPUModel        string
	Memory          string
	VCPUs           int // 0: QEMU's default
	HostCPUs        cpuset.Set
	EmulatorCPUs    cpuset.Set // QEMU's threads other than vCPUs and placed I/O threads
	User            string     // QEMU's user (qemu-launch --user); "": the launcher's
	MemoryLock      string     // "", "on" or "off"
	Kernel          string
	Initrd          string
	Append          string
	NoReboot        bool
	Graphics        bool // false: -nographic
	Paused          bool
	ShutdownTimeout time.Duration // 0: qemu-launch's default

	Drives []Drive
	NICs   []NIC
	VCPU   []VCPU
	IO     []IOThread
	Extra  []string // [QEMU] Arguments=

	// Lines are the lines of the [VM] section's keys, for messages.
	Lines map[string]int
}

// A Drive is a [Drive] section: one -drive.
type Drive struct {
	File, Interface, Format, Options string
}

// A NIC is a [NIC] section: a tap netdev and the guest device on it.
type NIC struct {
	ID, Model, MACAddress string
	Ifname                string
	Script, DownScript    string
	Settings              ifconf.Settings // Bridge=, MTU=, HostMAC=, VLAN=, Trunks=, Isolated=, Learning=, UnicastFlood=, LogicalPort=, OVNWait=, the limits, Spoofing=, IPAddress=
}

// An IOThread is an [IOThread] section: one -object iothread, placed on
// CPUs when they are given.
type IOThread struct {
	ID   string
	CPUs cpuset.Set // empty: with QEMU's other threads
	Line int        // of CPUs=, else of the section, for messages
}

// A VCPU is a [VCPU] section: one -vcpu.
type VCPU struct {
	Index    int
	Affinity cpuset.Set
	Priority int
	Line     int // of Affinity=, else of the section, for messages
}
