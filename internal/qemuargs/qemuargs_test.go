package qemuargs

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf/ifconftest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// The seed: the real-time VM command from the users' guide, after taskset.
var seed = []string{
	"-enable-kvm", "-m", "512", "-realtime", "mlock=on", "-smp", "2",
	"-name", "rt,process=rt-kvm", "-no-reboot", "-nographic",
	"-append", "root=/dev/vda console=ttyS0,115200",
	"-vcpu", "0,affinity=0x4,prio=0", "-vcpu", "1,affinity=0x8,prio=80",
	"-kernel", "bzImage", "-drive", "file=guest.ext4,if=virtio",
	"-device", "e1000,netdev=vm0",
	"-netdev", "tap,id=vm0,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown",
}

var stock = func() (Caps, error) { return Caps{}, nil }

func TestRewrite(t *testing.T) {
	qmp := []string{"-chardev", "socket,id=qemu-launch-qmp,fd=3", "-mon", "chardev=qemu-launch-qmp,mode=control"}
	helpers := ",script=/h/qemu-ifup,downscript=/h/qemu-ifdown"
	tests := []struct {
		name string
		args []string
		opt  Options // IfUp, IfDown, QMPFd and Caps filled in when unset
		want Result
	}{
		{
			name: "seed on stock QEMU",
			args: seed,
			want: Result{
				Args: append([]string{
					"-enable-kvm", "-m", "512", "-overcommit", "mem-lock=on", "-smp", "2",
					"-name", "rt,process=rt-kvm", "-no-reboot", "-nographic",
					"-append", "root=/dev/vda console=ttyS0,115200",
					"-kernel", "bzImage", "-drive", "file=guest.ext4,if=virtio",
					"-device", "e1000,netdev=vm0,mac=" + GuestMAC("rt", "vm0").String(),
					"-netdev", "tap,id=vm0,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown",
					"-S"}, qmp...),
				Name: "rt", VCPUs: 2, MemLock: "on", AddedS: true, LocksMemory: true, Memory: 512 << 20, ReadsTerminal: true,
				Pins: []Pin{{VCPU: 0, CPUs: cpuset.Of(2)}, {VCPU: 1, CPUs: cpuset.Of(3), Prio: 80}},
			},
		},
		{
			name: "seed on a QEMU with -realtime and -vcpu",
			args: seed,
			opt:  Options{Caps: func() (Caps, error) { return Caps{Realtime: true, VCPU: true}, nil }},
			want: Result{Args: append(withMAC(seed, "e1000,netdev=vm0", GuestMAC("rt", "vm0").String()), qmp...), Name: "rt", VCPUs: 2, LocksMemory: true, Memory: 512 << 20, ReadsTerminal: true},
		},
		{
			name: "thread placement pauses the guest and lists the I/O threads",
			args: []string{"-object", "iothread,id=io0", "-object", `{"qom-type":"iothread","id":"io1"}`, "-object", "memory-backend-ram,id=m,size=1G"},
			opt:  Options{PlaceThreads: true},
			want: Result{Args: append([]string{"-object", "iothread,id=io0", "-object", `{"qom-type":"iothread","id":"io1"}`, "-object", "memory-backend-ram,id=m,size=1G", "-S"}, qmp...),
				Name: "qemu", VCPUs: 1, AddedS: true, IOThreads: []string{"io0", "io1"}},
		},
		{
			name: "tap without scripts gets the helpers and a derived name",
			args: []string{"-name", "rt", "-netdev", "tap,id=vm0", "-device", "e1000,netdev=vm0"},
			opt:  Options{Bridge: "br0"},
			want: Result{
				Args: append([]string{"-name", "rt", "-netdev", "tap,id=vm0" + helpers + ",ifname=rt-vm0", "-device", "e1000,netdev=vm0,mac=" + GuestMAC("rt", "vm0").String()}, qmp...),
				Name: "rt", VCPUs: 1,
				Taps: []Tap{{ID: "vm0", Ifname: "rt-vm0", Derived: true,
					Settings: ifconftest.Settings(t, "Bridge=br0", "GuestMAC="+GuestMAC("rt", "vm0").String(), "VMName=rt")}},
			},
		},
		{
			name: "the guest MAC of -device mac= and -nic mac=, and the VM's name, go to the records",
			args: []string{"-name", "web", "-netdev", "tap,id=a", "-device", "virtio-net-pci,netdev=a,mac=52:54:00:00:00:0a",
				"-nic", "tap,id=b,mac=52:54:00:00:00:0b"},
			opt: Options{Bridge: "br0", Settings: map[string]ifconf.Settings{"b": ifconftest.Settings(t, "VMName=override")}},
			want: Result{
				Args: append([]string{"-name", "web", "-netdev", "tap,id=a" + helpers + ",ifname=web-a",
					"-device", "virtio-net-pci,netdev=a,mac=52:54:00:00:00:0a",
					"-nic", "tap,id=b,mac=52:54:00:00:00:0b" + helpers + ",ifname=web-b"}, qmp...),
				Name: "web", VCPUs: 1,
				Taps: []Tap{
					{ID: "a", Ifname: "web-a", Derived: true, Settings: ifconftest.Settings(t, "Bridge=br0", "GuestMAC=52:54:00:00:00:0a", "VMName=web")},
					{ID: "b", Ifname: "web-b", Derived: true, Settings: ifconftest.Settings(t, "Bridge=br0", "GuestMAC=52:54:00:00:00:0b", "VMName=override")},
				},
			},
		},
		{
			name: "the VM's -uuid goes to the records",
			args: []string{"-uuid", "8f3c4a55-1b2c-4d5e-8f90-123456789abc", "-netdev", "tap,id=a,ifname=t0"},
			opt:  Options{Bridge: "br-int", Settings: map[string]ifconf.Settings{"a": ifconftest.Settings(t, "LogicalPort=vm-a")}},
			want: Result{
				Args: append([]string{"-uuid", "8f3c4a55-1b2c-4d5e-8f90-123456789abc", "-netdev", "tap,id=a,ifname=t0" + helpers}, qmp...),
				Name: "qemu", VCPUs: 1,
				Taps: []Tap{{ID: "a", Ifname: "t0", Settings: ifconftest.Settings(t, "LogicalPort=vm-a", "VMUUID=8f3c4a55-1b2c-4d5e-8f90-123456789abc", "Bridge=br-int")}},
			},
		},
		{
			name: "-name after -netdev still names the tap; per-netdev settings",
			args: []string{"--netdev", "tap,id=a,ifname=mytap", "-netdev", "tap,id=b", "-name", "guest=web"},
			opt: Options{Bridge: "br0", Settings: map[string]ifconf.Settings{
				"a": ifconftest.Settings(t, "Bridge=br1", "MTU=9000", "MAC=keep"),
			}},
			want: Result{
				Args: append([]string{"-netdev", "tap,id=a,ifname=mytap" + helpers, "-netdev", "tap,id=b" + helpers + ",ifname=web-b", "-name", "guest=web"}, qmp...),
				Name: "web", VCPUs: 1,
				Taps: []Tap{
					{ID: "a", Ifname: "mytap", Settings: ifconftest.Settings(t, "Bridge=br1", "MTU=9000", "MAC=keep", "VMName=web")},
					{ID: "b", Ifname: "web-b", Derived: true, Settings: ifconftest.Settings(t, "Bridge=br0", "VMName=web")},
				},
			},
		},
		{
			name: "the user's scripts are kept, a missing downscript added",
			args: []string{"-netdev", "tap,id=n,script=no", "-netdev", "tap,id=m,script=/my/up,downscript=/my/down"},
			want: Result{
				Args: append([]string{"-netdev", "tap,id=n,script=no,downscript=/h/qemu-ifdown", "-netdev", "tap,id=m,script=/my/up,downscript=/my/down"}, qmp...),
				Name: "qemu", VCPUs: 1,
			},
		},
		{
			name: "the seed's script= naming our helper by another path gets a record",
			args: []string{"-netdev", "tap,id=vm0,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown", "-netdev", "tap,id=x,script=/other"},
			opt:  Options{Bridge: "br0", IsIfUp: func(p string) bool { return p == "/etc/qemu-ifup" }},
			want: Result{
				Args: append([]string{"-netdev", "tap,id=vm0,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown,ifname=qemu-vm0",
					"-netdev", "tap,id=x,script=/other,downscript=/h/qemu-ifdown"}, qmp...),
				Name: "qemu", VCPUs: 1,
				Taps: []Tap{{ID: "vm0", Ifname: "qemu-vm0", Derived: true, Settings: ifconftest.Settings(t, "Bridge=br0")}},
			},
		},
		{
			name: "-nic tap and -net tap; commas in paths escaped",
			args: []string{"-nic", "tap,model=virtio", "-net", "nic", "-net", "tap,name=old"},
			opt:  Options{IfUp: "/a,b/up"},
			want: Result{
				Args: append([]string{
					"-nic", "tap,model=virtio,script=/a,,b/up,downscript=/h/qemu-ifdown,ifname=qemu-nic0,mac=" + GuestMAC("qemu", "nic0").String(),
					"-net", "nic",
					"-net", "tap,name=old,script=/a,,b/up,downscript=/h/qemu-ifdown,ifname=qemu-old"}, qmp...),
				Name: "qemu", VCPUs: 1,
				Taps: []Tap{{ID: "nic0", Ifname: "qemu-nic0", Derived: true}, {ID: "old", Ifname: "qemu-old", Derived: true}},
			},
		},
		{
			name: "fd=, helper=, JSON and user netdevs pass unchanged",
			args: []string{"-netdev", "tap,id=a,fd=5", "-netdev", "tap,id=b,helper=/usr/lib/qemu/qemu-bridge-helper",
				"-netdev", `{"type":"tap","id":"c"}`, "-netdev", "user,id=d"},
			want: Result{
				Args: append([]string{"-netdev", "tap,id=a,fd=5", "-netdev", "tap,id=b,helper=/usr/lib/qemu/qemu-bridge-helper",
					"-netdev", `{"type":"tap","id":"c"}`, "-netdev", "user,id=d"}, qmp...),
				Name: "qemu", VCPUs: 1,
			},
		},
		{
			name: "the user's -S stays; -realtime without mlock= means on; off kept",
			args: []string{"-S", "-smp", "sockets=1,cores=2,threads=2", "-vcpu", "3,prio=10", "-realtime", "", "-realtime", "mlock=off"},
			want: Result{
				Args: append([]string{"-S", "-smp", "sockets=1,cores=2,threads=2", "-overcommit", "mem-lock=on", "-overcommit", "mem-lock=off"}, qmp...),
				Name: "qemu", VCPUs: 4, MemLock: "off", Paused: true,
				Pins: []Pin{{VCPU: 3, Prio: 10}},
			},
		},
		{
			name: "an option's value is never taken for an option",
			args: []string{"-append", "-vcpu", "-name", "-netdev", "-S", "disk.img"},
			opt:  Options{QMPFd: -1},
			want: Result{Args: []string{"-append", "-vcpu", "-name", "-netdev", "-S", "disk.img"}, Name: "-netdev", VCPUs: 1, Paused: true},
		},
		{
			name: "a trailing option without its value is left for QEMU to refuse",
			args: []string{"-m"},
			opt:  Options{QMPFd: -1},
			want: Result{Args: []string{"-m"}, Name: "qemu", VCPUs: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opt
			if o.IfUp == "" {
				o.IfUp = "/h/qemu-ifup"
			}
			if o.IfDown == "" {
				o.IfDown = "/h/qemu-ifdown"
			}
			if o.QMPFd == 0 {
				o.QMPFd = 3
			}
			if o.Caps == nil {
				o.Caps = stock
			}
			got, err := Rewrite(tt.args, o)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got, cmp.Comparer(cpuset.Set.Equal)); diff != "" {
				t.Errorf("Rewrite (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRewriteProbesOnlyWhenNeeded(t *testing.T) {
	calls := 0
	o := Options{IfUp: "u", IfDown: "d", Caps: func() (Caps, error) { calls++; return Caps{}, nil }}
	if _, err := Rewrite([]string{"-m", "512", "-netdev", "tap,id=x"}, o); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("probed %d times for a command without -realtime or -vcpu", calls)
	}
	if _, err := Rewrite(seed, o); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("probed %d times for the seed, want once", calls)
	}
	o.Caps = func() (Caps, error) { return Caps{}, errors.New("boom") }
	if _, err := Rewrite(seed, o); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("probe failure: got %v", err)
	}
}

func TestRewriteErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		opt  Options
		want string
	}{
		{"vCPU past -smp", []string{"-smp", "2", "-vcpu", "2,prio=1"}, Options{}, "vCPU 2 does not exist: -smp gives 2 vCPU(s)"},
		{"vCPU with no -smp", []string{"-vcpu", "1"}, Options{}, "vCPU 1 does not exist: -smp gives 1"},
		{"same vCPU twice", []string{"-smp", "2", "-vcpu", "0,prio=1", "-vcpu", "0,prio=2"}, Options{}, "vCPU 0 already set"},
		{"prio out of range", []string{"-vcpu", "0,prio=100"}, Options{}, "prio=100: want 0"},
		{"bad mask", []string{"-vcpu", "0,affinity=0xz"}, Options{}, "affinity mask"},
		{"unknown -vcpu key", []string{"-vcpu", "0,policy=rr"}, Options{}, `unknown -vcpu option "policy"`},
		{"no index", []string{"-vcpu", "affinity=0x1"}, Options{}, "no vCPU index"},
		{"bad mlock", []string{"-realtime", "mlock=yes"}, Options{}, "mlock=yes: want on or off"},
		{"unknown -realtime key", []string{"-realtime", "mlock=on,x=1"}, Options{}, `unknown -realtime option "x"`},
		{"bad -smp", []string{"-smp", "two"}, Options{}, "-smp two: cpus=two is not a number"},
		{"ifname too long", []string{"-netdev", "tap,id=a,ifname=abcdefghijklmnop"}, Options{}, "longer than 15"},
		{"ifname with %d", []string{"-netdev", "tap,id=a,ifname=tap%d"}, Options{}, "the kernel picks that name"},
		{"bridge for unknown netdev", []string{"-netdev", "tap,id=a"}, Options{Settings: map[string]ifconf.Settings{"b": ifconftest.Settings(t, "Bridge=br1")}}, "settings for netdev b, but"},
		{"bridge for a user script", []string{"-netdev", "tap,id=a,script=/x"}, Options{Settings: map[string]ifconf.Settings{"a": ifconftest.Settings(t, "Bridge=br1")}}, "runs its own script="},
		{"bridge for an fd tap", []string{"-netdev", "tap,id=a,fd=3"}, Options{Settings: map[string]ifconf.Settings{"a": ifconftest.Settings(t, "Bridge=br1")}}, "opens its tap with fd="},
		{"duplicate id", []string{"-netdev", "tap,id=a", "-netdev", "tap,id=a"}, Options{}, `second tap netdev with id "a"`},
		{"same tap name", []string{"-netdev", "tap,id=a,ifname=t", "-netdev", "tap,id=b,ifname=t"}, Options{}, "would both use tap t"},
		{"daemonize", []string{"-daemonize"}, Options{}, "-daemonize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opt
			o.IfUp, o.IfDown, o.Caps = "u", "d", stock
			_, err := Rewrite(tt.args, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Rewrite(%q) = %v, want error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestTapName(t *testing.T) {
	tests := []struct{ vm, id, want string }{
		{"rt", "vm0", "rt-vm0"},
		{"web", "net0", "web-net0"},
		{"abcdefghijk", "net0", "abcdefgh-"},      // prefix only; hash follows
		{"my vm", "n0", "my_vm-n0-"},              // whitespace replaced
		{"database-primary", "net1", "database-"}, // long
		{"-help", "n0", "_help-n0-"},              // no leading '-'
		{"a,b=c", "n0", "a_b_c-n0-"},              // QEMU's option syntax
		{"vä", "n0", "v__-n0-"},                   // printable ASCII only
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := TapName(tt.vm, tt.id)
		if err := link.ValidateName(got); err != nil {
			t.Errorf("TapName(%q, %q) = %q: %v", tt.vm, tt.id, got, err)
		}
		if !strings.HasPrefix(got, tt.want) || (got != tt.want && len(got) != 15 && !strings.HasSuffix(tt.want, "-n0-")) {
			t.Errorf("TapName(%q, %q) = %q, want %q...", tt.vm, tt.id, got, tt.want)
		}
		if got != TapName(tt.vm, tt.id) {
			t.Errorf("TapName(%q, %q) is not stable", tt.vm, tt.id)
		}
		if seen[got] {
			t.Errorf("TapName(%q, %q) = %q twice", tt.vm, tt.id, got)
		}
		seen[got] = true
	}
	if a, b := TapName("database-primary", "net0"), TapName("database-primary", "net1"); a == b {
		t.Errorf("two netdevs of one VM share tap %q", a)
	}
}

func TestParseHelp(t *testing.T) {
	help := "QEMU emulator version 7.2.22\n-m [size=]megs[,slots=n]\n-overcommit [mem-lock=on|off][cpu-pm=on|off]\n-S              freeze CPU\n"
	if got := ParseHelp([]byte(help)); got != (Caps{}) {
		t.Errorf("stock help: %+v", got)
	}
	help += "-realtime [mlock=on|off]\n-vcpu vcpunum,affinity=cpumask,prio=prio\n"
	if got := ParseHelp([]byte(help)); got != (Caps{Realtime: true, VCPU: true}) {
		t.Errorf("patched help: %+v", got)
	}
}

func TestParseOpts(t *testing.T) {
	got := parseOpts("tap,id=a,,b,vhost,script=", "type")
	want := opts{{"type", "tap"}, {"id", "a,b"}, {"vhost", "on"}, {"script", ""}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(opt{})); diff != "" {
		t.Errorf("parseOpts (-want +got):\n%s", diff)
	}
}

// FuzzRewrite: any command line (words separated by NUL) is rewritten or
// refused without a panic; a rewrite keeps its promises.
func FuzzRewrite(f *testing.F) {
	f.Add(strings.Join(seed, "\x00"))
	f.Add("-S\x00-smp\x00cpus=2,sockets=1\x00-vcpu\x001,prio=99\x00-nic\x00tap,,x\x00-net\x00tap")
	f.Add("-netdev\x00tap,id=a,ifname=x%d\x00-name\x00guest=a b\x00-realtime\x00")
	f.Fuzz(func(t *testing.T, cmdline string) {
		args := strings.Split(cmdline, "\x00")
		res, err := Rewrite(args, Options{Caps: stock, IfUp: "/u", IfDown: "/d", QMPFd: 3})
		if err != nil {
			return
		}
		n := len(res.Args)
		if n < 4 || res.Args[n-4] != "-chardev" || res.Args[n-2] != "-mon" {
			t.Errorf("QMP monitor not last: %q", res.Args)
		}
		for _, p := range res.Pins {
			if p.VCPU >= res.VCPUs {
				t.Errorf("pin for vCPU %d of %d", p.VCPU, res.VCPUs)
			}
		}
		if len(res.Pins) > 0 && !res.Paused && !res.AddedS {
			t.Error("pins without -S")
		}
		for _, tp := range res.Taps {
			if err := link.ValidateName(tp.Ifname); err != nil {
				t.Errorf("tap %q: %v", tp.Ifname, err)
			}
		}
	})
}

// What the host check reads from a command line: the memory to lock.
func TestMemoryReaders(t *testing.T) {
	tests := []struct {
		args []string
		lock bool
		size int64
	}{
		{nil, false, 0},
		{[]string{"-m", "512"}, false, 512 << 20},
		{[]string{"-m", "size=2G,slots=2,maxmem=8G", "-overcommit", "mem-lock=on"}, true, 2 << 30},
		{[]string{"-m", "1.5g", "-overcommit", "mem-lock=on-fault"}, true, 3 << 29},
		{[]string{"-m", "256M", "-m", "64k", "-overcommit", "cpu-pm=on"}, false, 64 << 10},
		{[]string{"-realtime", "mlock=on", "-overcommit", "mem-lock=off"}, false, 0},
		{[]string{"-realtime", "", "-m", "lots"}, true, 0},
		{[]string{"-m", "12x", "-nographic", "-overcommit", "mem-lock=on"}, true, 0},
		{[]string{"-overcommit", "mem-lock=on", "-overcommit", "mem-lock=off"}, false, 0},
		{[]string{"-overcommit", "cpu-pm=on,mem-lock=on"}, true, 0},
		{[]string{"-realtime", "mlock=off"}, false, 0},
		{[]string{"-append", "-overcommit"}, false, 0},
	}
	for _, tt := range tests {
		if got := locksMemory(tt.args); got != tt.lock {
			t.Errorf("locksMemory(%q) = %v, want %v", tt.args, got, tt.lock)
		}
		if got := memorySize(tt.args); got != tt.size {
			t.Errorf("memorySize(%q) = %d, want %d", tt.args, got, tt.size)
		}
	}
}

func TestReadsTerminal(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-display", "none", "-nodefaults"}, false},
		{[]string{"-nographic"}, true},
		{[]string{"--nographic", "-m", "512"}, true},
		{[]string{"-serial", "stdio", "-display", "none"}, true},
		{[]string{"-serial", "file:/tmp/x", "-monitor", "stdio"}, true},
		{[]string{"-chardev", "stdio,id=c0,signal=off"}, true},
		{[]string{"-chardev", "socket,id=c0,path=/tmp/stdio"}, false},
		{[]string{"-display", "curses"}, true},
		{[]string{"-curses"}, true},
		{[]string{"-name", "stdio"}, false},                   // a value, not a console
		{[]string{"-append", "-nographic", "-m", "1"}, false}, // -nographic as -append's value
	}
	for _, tt := range tests {
		if got := readsTerminal(tt.args); got != tt.want {
			t.Errorf("readsTerminal(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// withMAC is args with ",mac=MAC" after the -device value dev.
func withMAC(args []string, dev, mac string) []string {
	out := append([]string{}, args...)
	for i, a := range out {
		if a == dev {
			out[i] += ",mac=" + mac
		}
	}
	return out
}

func TestGuestMACs(t *testing.T) {
	o := Options{IfUp: "/h/qemu-ifup", IfDown: "/h/qemu-ifdown", Caps: stock}
	res, err := Rewrite([]string{"-name", "web",
		"-device", "e1000,netdev=a", "-netdev", "tap,id=a",
		"-device", "virtio-net-pci,netdev=b,mac=52:54:00:00:00:01", "-netdev", "tap,id=b",
		"-device", "e1000,netdev=u", "-netdev", "user,id=u",
		"-device", "e1000,netdev=c", "-netdev", "tap,id=c,fd=5",
		"-nic", "tap,id=d", "-nic", "tap,id=e,mac=52:54:00:00:00:02",
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-name", "web",
		"-device", "e1000,netdev=a,mac=" + GuestMAC("web", "a").String(), "-netdev", "tap,id=a,script=/h/qemu-ifup,downscript=/h/qemu-ifdown,ifname=web-a",
		"-device", "virtio-net-pci,netdev=b,mac=52:54:00:00:00:01", "-netdev", "tap,id=b,script=/h/qemu-ifup,downscript=/h/qemu-ifdown,ifname=web-b",
		"-device", "e1000,netdev=u", "-netdev", "user,id=u",
		"-device", "e1000,netdev=c,mac=" + GuestMAC("web", "c").String(), "-netdev", "tap,id=c,fd=5",
		"-nic", "tap,id=d,script=/h/qemu-ifup,downscript=/h/qemu-ifdown,ifname=web-d,mac=" + GuestMAC("web", "d").String(),
		"-nic", "tap,id=e,mac=52:54:00:00:00:02,script=/h/qemu-ifup,downscript=/h/qemu-ifdown,ifname=web-e",
	}
	if diff := cmp.Diff(want, res.Args); diff != "" {
		t.Errorf("Rewrite (-want +got):\n%s", diff)
	}
	// Stable, unicast, locally administered, distinct per VM and NIC.
	seen := map[string]string{}
	for _, vm := range []string{"web", "db", "web1", "qemu"} {
		for _, id := range []string{"a", "b", "net0", "net1"} {
			m := GuestMAC(vm, id)
			if m.String() != GuestMAC(vm, id).String() {
				t.Errorf("GuestMAC(%s, %s) not stable", vm, id)
			}
			if m[0]&1 != 0 || m[0]&2 == 0 || len(m) != 6 {
				t.Errorf("GuestMAC(%s, %s) = %s: want a unicast, locally administered MAC", vm, id, m)
			}
			if prev, dup := seen[m.String()]; dup {
				t.Errorf("GuestMAC(%s, %s) = %s, as %s", vm, id, m, prev)
			}
			seen[m.String()] = vm + "/" + id
		}
	}
}

func TestUsesDisplay(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, true}, // QEMU's default display
		{[]string{"-nodefaults", "-m", "64"}, true},
		{[]string{"-nographic"}, false},
		{[]string{"-display", "none"}, false},
		{[]string{"-display", "gtk,gl=on"}, true},
		{[]string{"-display", "sdl"}, true},
		{[]string{"-display", "spice-app"}, true},
		{[]string{"-display", "curses"}, false},
		{[]string{"-display", "egl-headless"}, false},
		{[]string{"-display", "vnc=:1"}, false},
		{[]string{"-vnc", ":1"}, false},
		{[]string{"-spice", "port=5930"}, false},
		{[]string{"-vnc", ":1", "-display", "gtk"}, true},
		{[]string{"-display", "gtk", "-display", "none"}, false}, // the last one counts
		{[]string{"-sdl"}, true},
		{[]string{"-append", "-nographic"}, true}, // -nographic as -append's value
	}
	for _, tt := range tests {
		if got := UsesDisplay(tt.args); got != tt.want {
			t.Errorf("UsesDisplay(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestNamedFds(t *testing.T) {
	tests := []struct {
		args []string
		want []int
	}{
		{nil, nil},
		{[]string{"-netdev", "tap,id=n0,fd=5", "-m", "64"}, []int{5}},
		{[]string{"-netdev", "tap,id=n0,fds=5:6,vhostfds=7:8"}, []int{5, 6, 7, 8}},
		{[]string{"-netdev", "tap,id=n0,fd=9,vhostfd=10"}, []int{9, 10}},
		{[]string{"-add-fd", "fd=12,set=2,opaque=disk"}, []int{12}},
		{[]string{"-chardev", "socket,id=c,fd=3"}, []int{3}},
		{[]string{"-netdev", "tap,id=n0,fd=myfd"}, nil}, // a name given to QEMU over QMP
		{[]string{"-append", "fd=5"}, nil},              // the guest kernel's command line
		{[]string{"-incoming", "fd:6"}, []int{6}},
		{[]string{"-incoming", "tcp:0:4444"}, nil},
		{[]string{"-nographic", "-name", "fd=4"}, []int{4}},
	}
	for _, tt := range tests {
		if got := NamedFds(tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("NamedFds(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}
