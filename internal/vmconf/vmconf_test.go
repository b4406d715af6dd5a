package vmconf

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf/ifconftest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// The example shipped in packaging/ is the seed's command.
func TestExample(t *testing.T) {
	vm, err := Load("../../packaging/examples/vm.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-name", "guest=rt,process=rt-kvm", "-accel", "kvm", "-m", "512M", "-smp", "2",
		"-realtime", "mlock=on", "-vcpu", "0,affinity=0x4,prio=0", "-vcpu", "1,affinity=0x8,prio=80",
		"-no-reboot", "-nographic", "-kernel", "/var/lib/qemu-launch/rt/bzImage",
		"-append", "root=/dev/vda console=ttyS0,115200",
		"-drive", "file=/var/lib/qemu-launch/rt/guest.ext4,if=virtio,format=raw",
		"-device", "e1000,netdev=vm0", "-netdev", "tap,id=vm0",
		"-device", "virtio-rng-pci", "-rtc", "base=utc,clock=host",
	}
	if diff := cmp.Diff(want, vm.Args()); diff != "" {
		t.Errorf("Args (-want +got):\n%s", diff)
	}
	if vm.Binary != "qemu-system-x86_64" || !vm.HostCPUs.Equal(cpuset.Of(2, 3)) || vm.ShutdownTimeout != time.Minute {
		t.Errorf("Binary %q, HostCPUs %v, ShutdownTimeout %v", vm.Binary, vm.HostCPUs, vm.ShutdownTimeout)
	}
	if diff := cmp.Diff(map[string]ifconf.Settings{"vm0": ifconftest.Settings(t, "Bridge=br0")}, vm.TapSettings()); diff != "" {
		t.Errorf("TapSettings (-want +got):\n%s", diff)
	}
}

func TestParse(t *testing.T) {
	in := `[VM]
Name=web, one
Memory=2G
VCPUs=4
Paused=yes
Append=console=ttyS0\
  quiet
[NIC]
Model=virtio-net-pci
MACAddress=52:54:00:12:34:56
MTU=9000
HostMAC=keep
Ifname=web0
[NIC]
Script=/etc/my-ifup
DownScript=no
[Drive]
File=/a,b.img
Options=cache=none
[VCPU]
Index=3
Priority=10
[IOThread]
ID=io0
CPUs=1
[IOThread]
ID=io1
[QEMU]
Arguments=-device 'a b' "c\"d" e\ f
`
	vm, err := Parse("t.conf", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-name", "guest=web,, one", "-m", "2G", "-smp", "4", "-vcpu", "3,prio=10",
		"-object", "iothread,id=io0", "-object", "iothread,id=io1", "-S",
		"-append", "console=ttyS0 quiet", "-drive", "file=/a,,b.img,cache=none",
		"-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56", "-netdev", "tap,id=net0,ifname=web0",
		"-device", "virtio-net-pci,netdev=net1", "-netdev", "tap,id=net1,script=/etc/my-ifup,downscript=no",
		"-device", "a b", `c"d`, "e f",
	}
	if diff := cmp.Diff(want, vm.Args()); diff != "" {
		t.Errorf("Args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]ifconf.Settings{"net0": ifconftest.Settings(t, "MTU=9000", "MAC=keep")}, vm.TapSettings()); diff != "" {
		t.Errorf("TapSettings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]cpuset.Set{"io0": cpuset.Of(1)}, vm.IOThreadCPUs(), cmp.Comparer(cpuset.Set.Equal)); diff != "" {
		t.Errorf("IOThreadCPUs (-want +got):\n%s", diff)
	}
}

// TestParseHostBridgeKeys: a [NIC]'s VLAN and port flags go to qemu-ifup
// through the tap's settings.
func TestParseHostBridgeKeys(t *testing.T) {
	vm, err := Parse("t.conf", []byte("[NIC]\nID=a\nBridge=ovsbr0\nVLAN=10\nTrunks=20 30\n[NIC]\nID=b\nIsolated=yes\nLearning=no\nUnicastFlood=no\n"+
		"[NIC]\nID=c\nInboundRate=1M\nOutboundRate=2M\nOutboundBurst=64K\nSpoofing=deny\nIPAddress=10.0.0.2\nIPAddress=fd00::2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ifconf.Settings{
		"a": ifconftest.Settings(t, "Bridge=ovsbr0", "VLAN=10", "Trunks=20,30"),
		"b": ifconftest.Settings(t, "Isolated=yes", "Learning=no", "UnicastFlood=no"),
		"c": ifconftest.Settings(t, "InboundRate=1M", "OutboundRate=2M", "OutboundBurst=64K", "Spoofing=deny", "IPAddress=10.0.0.2 fd00::2"),
	}
	if diff := cmp.Diff(want, vm.TapSettings()); diff != "" {
		t.Errorf("TapSettings (-want +got):\n%s", diff)
	}
}

// TestParseOVN: a NIC's OVN logical port goes to qemu-ifup's settings,
// the VM's UUID to -uuid.
func TestParseOVN(t *testing.T) {
	vm, err := Parse("t.conf", []byte("[VM]\nUUID=8f3c4a55-1b2c-4d5e-8f90-123456789abc\n[NIC]\nID=a\nBridge=br-int\nLogicalPort=vm-a\nOVNWait=5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ifconf.Settings{"a": ifconftest.Settings(t, "Bridge=br-int", "LogicalPort=vm-a", "OVNWait=5s")}
	if diff := cmp.Diff(want, vm.TapSettings()); diff != "" {
		t.Errorf("TapSettings (-want +got):\n%s", diff)
	}
	if got := strings.Join(vm.Args(), " "); !strings.Contains(got, "-uuid 8f3c4a55-1b2c-4d5e-8f90-123456789abc") {
		t.Errorf("Args() = %s, want -uuid", got)
	}
	if _, err := Parse("t.conf", []byte("[VM]\nUUID=vm-a\n")); err == nil || !strings.Contains(err.Error(), `UUID: "vm-a" is not a UUID`) {
		t.Errorf("Parse of a bad UUID: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[VM]\nNmae=rt\n", "vm.conf:2: unknown key Nmae= in [VM]"},
		{"[VM]\nMemory=lots\n", `vm.conf:2: Memory: "lots" is not a size`},
		{"[VM]\nVCPUs=0\n", `vm.conf:2: VCPUs: "0" is not a number from 1 to 4096`},
		{"[VM]\nHostCPUs=2-1\n", "vm.conf:2: HostCPUs: CPU list"},
		{"[VM]\nMemoryLock=maybe\n", `vm.conf:2: MemoryLock: "maybe" is not a boolean`},
		{"[VM]\nName=a\n\nName=b\n", "vm.conf:4: Name= given twice in [VM] (first at line 2)"},
		{"[VM]\n[VM]\n", "vm.conf:2: second [VM] section"},
		{"[Network]\n", "vm.conf:1: unknown section [Network]"},
		{"[Drive]\nFormat=raw\n", "vm.conf:1: [Drive] without File="},
		{"[NIC]\nBridge=br0\nScript=/x\n", "vm.conf:1: [NIC] net0: Bridge=, MTU=, HostMAC=, VLAN=, Trunks=, Isolated=, Learning=, UnicastFlood=, LogicalPort=, OVNWait=, the rates and bursts, Spoofing= and IPAddress= are for qemu-launch's qemu-ifup"},
		{"[NIC]\nIsolated=yes\nScript=/x\n", "vm.conf:1: [NIC] net0: Bridge=, MTU=, HostMAC="},
		{"[NIC]\nVLAN=5000\n", `vm.conf:2: VLAN: "5000" is not a VLAN ID from 1 to 4094`},
		{"[NIC]\nInboundRate=fast\n", `vm.conf:2: InboundRate: "fast" is not a rate in bits per second from 8K to 1T (1M is 1 Mbit/s)`},
		{"[NIC]\nSpoofing=deny\nSpoofing=allow\n", "vm.conf:3: Spoofing= given twice in [NIC] (first at line 2)"},
		{"[NIC]\nGuestMAC=52:54:00:12:34:56\n", "vm.conf:2: unknown key GuestMAC= in [NIC]"},
		{"[NIC]\nBridge=a-very-long-bridge\n", "vm.conf:2: Bridge: invalid interface name"},
		{"[NIC]\nMACAddress=52:54:00\n", "vm.conf:2: MACAddress:"},
		{"[NIC]\nHostMAC=low\n", `vm.conf:2: HostMAC: MAC policy "low" is neither high nor keep`},
		{"[NIC]\nID=a\n[NIC]\nID=a\n", "vm.conf: two [NIC] sections with ID=a"},
		{"[VCPU]\nPriority=5\n", "vm.conf:1: [VCPU] without Index="},
		{"[VCPU]\nIndex=0\nPriority=100\n", `vm.conf:3: Priority: "100" is not a number from 0 to 99`},
		{"[VM]\nVCPUs=2\n[VCPU]\nIndex=2\n", "vm.conf: [VCPU] Index=2: the VM has 2 vCPU(s)"},
		{"[VM]\nVCPUs=2\nHostCPUs=2,3\n[VCPU]\nIndex=1\nAffinity=0x1\n", "vm.conf: [VCPU] Index=1: Affinity=0 is outside HostCPUs=2-3"},
		{"[VM]\nHostCPUs=2,3\nEmulatorCPUs=1-2\n", "vm.conf: EmulatorCPUs=1-2 is outside HostCPUs=2-3"},
		{"[VM]\nEmulatorCPUs=x\n", "vm.conf:2: EmulatorCPUs: "},
		{"[IOThread]\nCPUs=1\n", "vm.conf:1: [IOThread] without ID="},
		{"[IOThread]\nID=a b\n", `vm.conf:2: ID: "a b" is not a plain word`},
		{"[IOThread]\nID=a\n[IOThread]\nID=a\n", "vm.conf: two [IOThread] sections with ID=a"},
		{"[VM]\nHostCPUs=2\n[IOThread]\nID=a\nCPUs=0\n", "vm.conf: [IOThread] ID=a: CPUs=0 is outside HostCPUs=2"},
		{"[QEMU]\nArguments=-append 'x\n", "vm.conf:2: Arguments: unterminated ' quote"},
		{"[QEMU]\nArgs=x\n", "vm.conf:2: unknown key Args= in [QEMU]"},
		{"Name=x\n", "vm.conf: line 1: Name= before any [section]"},
	}
	for _, tt := range tests {
		_, err := Parse("vm.conf", []byte(tt.in))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error starting %q", tt.in, err, tt.want)
		}
	}
}

// FuzzParse: whatever the input, Parse does not panic, its errors name the
// file, and a file it accepts gives a command line.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[VM]\nName=rt\nVCPUs=2\nHostCPUs=0-1\nMemoryLock=yes\n[VCPU]\nIndex=1\nAffinity=0x2\nPriority=80\n"))
	f.Add([]byte("[NIC]\nID=vm0\nBridge=br0\nMTU=9000\nHostMAC=keep\n[Drive]\nFile=a,b\n"))
	f.Add([]byte("[QEMU]\nArguments=-append 'a b' \"c\\\"d\" e\\ f\n"))
	f.Add([]byte("[VM]\nAppend=a \\\n b\n; comment\n# comment\n"))
	f.Add([]byte("[VM]\r\nName=\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vm, err := Parse("f.conf", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.conf") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		for _, v := range vm.VCPU {
			if n := vm.VCPUs; v.Index >= max(n, 1) {
				t.Errorf("accepted vCPU %d of %d", v.Index, n)
			}
		}
		// Every NIC gives its own -netdev, its id unescaped.
		args := strings.Join(vm.Args(), "\x00")
		for _, n := range vm.NICs {
			if !strings.Contains(args, "\x00-netdev\x00tap,id="+n.ID) {
				t.Errorf("NIC %s has no -netdev in %q", n.ID, args)
			}
		}
	})
}
