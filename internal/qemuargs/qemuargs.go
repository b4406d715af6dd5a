// Package qemuargs rewrites a QEMU command line for qemu-launch: it wires
// tap netdevs to the tap helpers, translates the options stock QEMU lacks
// (-realtime, -vcpu) and adds the launcher's private QMP monitor. It is
// pure: it runs nothing and touches no file.
package qemuargs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// QMPChardev is the id of the chardev behind the launcher's QMP monitor.
const QMPChardev = "qemu-launch-qmp"

// DefaultName names the VM, for tap names, when there is no -name.
const DefaultName = "qemu"

// Options say how to rewrite.
type Options struct {
	// Caps returns what the QEMU binary accepts; it is called at most
	// once, and only when the command uses -realtime or -vcpu.
	Caps func() (Caps, error)
	// IfUp and IfDown are the helpers put into script= and downscript=.
	IfUp, IfDown string
	// IsIfUp reports whether a script= the user wrote is IfUp under
	// another name (/etc/qemu-ifup linked to it): that tap gets a
	// record too. Nil means never.
	IsIfUp func(script string) bool
	// Bridge is the bridge for the taps Settings names none for.
	Bridge string
	// Settings holds per-netdev settings for qemu-ifup, by netdev id.
	Settings map[string]ifconf.Settings
	// QMPFd is the descriptor number of the QMP socket in QEMU; 0 adds
	// no monitor.
	QMPFd int
	// PlaceThreads says the launcher places QEMU's threads before the
	// guest runs (emulator or I/O thread placement): -S is added as for
	// -vcpu.
	PlaceThreads bool
	// TapFd, when not 0, makes the launcher open the taps it wires and
	// pass them to QEMU as fd=TapFd, TapFd+1, ... in the order of Taps,
	// with no script= or downscript=: for a QEMU that runs without the
	// privileges to create a tap or to run qemu-ifup.
	TapFd int
}

// A Tap is a tap netdev the launcher wired to the helpers.
type Tap struct {
	ID      string // netdev id
	Ifname  string // interface name, given or derived
	Derived bool   // the launcher chose Ifname
	// FD is the tap's (first queue's) descriptor number in QEMU when the
	// launcher opens it (Options.TapFd), 0 when QEMU does; its queues
	// follow at FD+1...
	FD int
	// Queues is the number of queues the launcher opens (queues=), at
	// least 1 when it opens the tap.
	Queues int
	// VnetHdr asks for a tap with a virtio-net header (the launcher
	// opens it; QEMU probes it): all but vnet_hdr=off.
	VnetHdr  bool
	Settings ifconf.Settings
}

// A Pin is a -vcpu option the launcher carries out itself.
type Pin struct {
	VCPU int
	CPUs cpuset.Set // empty: leave the affinity alone
	Prio int        // 0: normal policy; 1-99: SCHED_FIFO at that priority
}

// A Result is the rewritten command line and what the launcher must do
// beside it.
type Result struct {
	Args    []string // arguments after the binary
	Name    string   // the VM's name (-name), DefaultName if none
	VCPUs   int      // vCPUs at start (-smp)
	Taps    []Tap
	Pins    []Pin
	Paused  bool   // the user's -S: stay paused after setup
	AddedS  bool   // the launcher added -S to pin before the guest runs
	MemLock string // "on" or "off" when -realtime was translated

	// LocksMemory: the command asks QEMU to lock the guest's memory
	// (-overcommit mem-lock=on, or -realtime mlock=on where kept).
	LocksMemory bool
	// Memory is the guest's memory at start in bytes (-m), 0 when the
	// command gives none or QEMU's syntax is beyond this reading.
	Memory int64
	// IOThreads are the ids of the -object iothread the command creates.
	IOThreads []string
	// ReadsTerminal: QEMU reads its standard input (a console or monitor
	// on stdio), so on a terminal it must be the foreground job.
	ReadsTerminal bool
}

// noArg lists the QEMU options that take no argument (HAS_ARG 0 in
// qemu-options.hx), old and new; every other option takes one. QEMU knows
// this from its own table, and so must we to tell options from values.
var noArg = map[string]bool{
	"h": true, "help": true, "version": true, "S": true, "s": true,
	"snapshot": true, "nographic": true, "portrait": true,
	"full-screen": true, "no-frame": true, "alt-grab": true,
	"ctrl-grab": true, "no-quit": true, "sdl": true, "curses": true,
	"win2k-hack": true, "rtc-td-hack": true, "no-fd-bootchk": true,
	"no-acpi": true, "no-hpet": true, "enable-kvm": true, "no-kvm": true,
	"no-kvm-irqchip": true, "no-kvm-pit": true,
	"no-kvm-pit-reinjection": true, "xen-create": true,
	"xen-attach": true, "xen-domid-restrict": true, "no-reboot": true,
	"no-shutdown": true, "daemonize": true, "nodefaults": true,
	"nodefconfig": true, "no-user-config": true,
	"only-migratable": true, "preconfig": true, "enable-fips": true,
	"enable-sync-profile": true, "singlestep": true, "usb": true,
	"mem-prealloc": true, "audio-help": true, "semihosting": true,
	"async-teardown": true, "perfmap": true, "jitdump": true,
	"old-param": true, "localtime": true, "std-vga": true,
}

// optName returns the option a word names ("-m" and "--m" both give "m"),
// or "" for a word that is not an option.
func optName(w string) string {
	if len(w) < 2 || w[0] != '-' {
		return ""
	}
	if w[1] == '-' {
		return w[2:]
	}
	return w[1:]
}

type rewriter struct {
	o       Options
	caps    *Caps
	res     Result
	netdevs int             // taps seen, for ids of -nic/-net without one
	tapIDs  map[string]bool // ids of every tap netdev
	lastID  string          // id of the tap netdev option just read
	vcpus   map[int]string  // -vcpu options seen, by index
	smp     string
}

// Rewrite rewrites args, the arguments after the QEMU binary.
func Rewrite(args []string, o Options) (*Result, error) {
	r := &rewriter{o: o, vcpus: map[int]string{}, tapIDs: map[string]bool{}}
	r.res.Name = vmName(args)
	out := make([]string, 0, len(args)+8)
	for i := 0; i < len(args); i++ {
		w := args[i]
		name := optName(w)
		if name == "" || noArg[name] {
			switch name {
			case "S":
				r.res.Paused = true
			case "daemonize":
				return nil, errors.New("-daemonize: qemu-launch stays QEMU's parent; drop -daemonize")
			}
			out = append(out, w)
			continue
		}
		if i+1 == len(args) {
			// QEMU will say the value is missing.
			out = append(out, w)
			continue
		}
		i++
		rep, err := r.option(name, args[i])
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", w, shown(args[i]), err)
		}
		if rep == nil {
			rep = []string{w, args[i]}
		}
		out = append(out, rep...)
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	out = r.deviceMACs(out)
	if (len(r.res.Pins) > 0 || o.PlaceThreads) && !r.res.Paused {
		out = append(out, "-S")
		r.res.AddedS = true
	}
	if o.QMPFd > 0 {
		out = append(out,
			"-chardev", "socket,id="+QMPChardev+",fd="+strconv.Itoa(o.QMPFd),
			"-mon", "chardev="+QMPChardev+",mode=control")
	}
	r.res.Args = out
	r.res.LocksMemory, r.res.Memory, r.res.IOThreads = locksMemory(out), memorySize(out), ioThreads(out)
	r.res.ReadsTerminal = readsTerminal(out)
	return &r.res, nil
}

func (r *rewriter) capsOf() (Caps, error) {
	if r.caps == nil {
		c := Caps{}
		if r.o.Caps != nil {
			var err error
			if c, err = r.o.Caps(); err != nil {
				return Caps{}, err
			}
		}
		r.caps = &c
	}
	return *r.caps, nil
}

// option handles one option with its value. It returns the words that
// replace them, nil to keep them unchanged.
func (r *rewriter) option(name, val string) ([]string, error) {
	switch name {
	case "netdev", "nic", "net":
		r.lastID = ""
		rep, err := r.netdev(name, val)
		if err != nil || name != "nic" || r.lastID == "" {
			return rep, err
		}
		// -nic is netdev and NIC in one: its guest MAC goes here.
		if _, ok := parseOpts(val, "type").get("mac"); ok {
			return rep, nil
		}
		if rep == nil {
			rep = []string{"-nic", val}
		}
		rep[1] += ",mac=" + GuestMAC(r.res.Name, r.lastID).String()
		return rep, nil
	case "smp":
		r.smp = val
	case "realtime":
		return r.realtime(val)
	case "vcpu":
		return r.vcpu(val)
	}
	return nil, nil
}

func (r *rewriter) realtime(val string) ([]string, error) {
	c, err := r.capsOf()
	if err != nil || c.Realtime {
		return nil, err
	}
	lock := "on" // -realtime's default
	for _, e := range parseOpts(val, "") {
		if e.key != "mlock" {
			return nil, fmt.Errorf("unknown -realtime option %q (only mlock=on|off)", e.key)
		}
		if e.val != "on" && e.val != "off" {
			return nil, fmt.Errorf("mlock=%s: want on or off", e.val)
		}
		lock = e.val
	}
	r.res.MemLock = lock
	return []string{"-overcommit", "mem-lock=" + lock}, nil
}

func (r *rewriter) vcpu(val string) ([]string, error) {
	c, err := r.capsOf()
	if err != nil || c.VCPU {
		return nil, err
	}
	var (
		p   Pin
		idx = false
	)
	for _, e := range parseOpts(val, "vcpunum") {
		switch e.key {
		case "vcpunum":
			n, err := strconv.Atoi(e.val)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("vCPU index %q is not a number", e.val)
			}
			p.VCPU, idx = n, true
		case "affinity":
			s, err := cpuset.ParseMask(e.val)
			if err != nil {
				return nil, err
			}
			p.CPUs = s
		case "prio":
			n, err := strconv.Atoi(e.val)
			if err != nil || n < 0 || n > 99 {
				return nil, fmt.Errorf("prio=%s: want 0 (normal policy) to 99 (SCHED_FIFO)", e.val)
			}
			p.Prio = n
		default:
			return nil, fmt.Errorf("unknown -vcpu option %q (want N,affinity=MASK,prio=P)", e.key)
		}
	}
	if !idx {
		return nil, errors.New("no vCPU index (want N,affinity=MASK,prio=P)")
	}
	if prev, dup := r.vcpus[p.VCPU]; dup {
		return nil, fmt.Errorf("vCPU %d already set by -vcpu %s", p.VCPU, prev)
	}
	r.vcpus[p.VCPU] = val
	r.res.Pins = append(r.res.Pins, p)
	return []string{}, nil
}

// netdev wires a tap netdev (-netdev tap, -nic tap or -net tap) to the
// helpers. JSON netdevs and non-tap ones pass unchanged.
func (r *rewriter) netdev(flag, val string) ([]string, error) {
	if strings.HasPrefix(val, "{") {
		return nil, nil
	}
	o := parseOpts(val, "type")
	if t, _ := o.get("type"); t != "tap" {
		return nil, nil
	}
	r.netdevs++
	id, ok := o.get("id")
	if !ok && flag == "net" {
		id, ok = o.get("name")
	}
	if !ok {
		id = flag + strconv.Itoa(r.netdevs-1)
	}
	r.tapIDs[id], r.lastID = true, id
	for _, k := range []string{"fd", "fds", "helper"} {
		if _, ok := o.get(k); ok {
			if _, want := r.o.Settings[id]; want {
				return nil, fmt.Errorf("netdev %s opens its tap with %s=, so qemu-ifup cannot be given its settings", id, k)
			}
			return nil, nil
		}
	}
	for _, t := range r.res.Taps {
		if t.ID == id {
			return nil, fmt.Errorf("second tap netdev with id %q", id)
		}
	}
	add := ""
	up, hasUp := o.get("script")
	if !hasUp {
		add += ",script=" + escape(r.o.IfUp)
	}
	if _, ok := o.get("downscript"); !ok {
		add += ",downscript=" + escape(r.o.IfDown)
	}
	if hasUp && (r.o.IsIfUp == nil || !r.o.IsIfUp(up)) {
		if r.o.TapFd > 0 && up != "" && up != "no" {
			return nil, fmt.Errorf("netdev %s runs its own script=%s, which would run without privileges as QEMU's user; drop it and qemu-launch runs qemu-ifup itself", id, up)
		}
		// The user's own script gets no record: it would not read it.
		if _, want := r.o.Settings[id]; want {
			return nil, fmt.Errorf("netdev %s runs its own script=, which would not read the bridge given for it", id)
		}
		return []string{"-" + flag, val + add}, nil
	}
	t := Tap{ID: id, Settings: r.o.Settings[id]}
	// The VM's name for Open vSwitch's external-ids, where the command
	// names the VM; a name the settings refuse is left out.
	if r.res.Name != DefaultName && !t.Settings.Has(ifconf.KeyVMName) {
		_ = t.Settings.Set(ifconf.KeyVMName, r.res.Name, ifconf.Origin{File: "-name"})
	}
	if mac, ok := o.get("mac"); ok && flag == "nic" && !t.Settings.Has(ifconf.KeyGuestMAC) {
		_ = t.Settings.Set(ifconf.KeyGuestMAC, mac, ifconf.Origin{File: "-nic"})
	}
	if !t.Settings.Has(ifconf.KeyBridge) && r.o.Bridge != "" {
		if err := t.Settings.Set(ifconf.KeyBridge, r.o.Bridge, ifconf.Origin{File: "--bridge"}); err != nil {
			return nil, fmt.Errorf("--bridge: %w", err)
		}
	}
	if ifname, ok := o.get("ifname"); ok {
		if strings.Contains(ifname, "%") && utf8.ValidString(ifname) && strings.IndexFunc(ifname, unicode.IsControl) < 0 {
			return nil, fmt.Errorf("ifname=%s: the kernel picks that name, so qemu-ifup cannot be given settings for it; drop ifname= and qemu-launch names the tap", ifname)
		}
		if err := link.ValidateName(ifname); err != nil {
			return nil, err
		}
		t.Ifname = ifname
	} else {
		t.Ifname, t.Derived = TapName(r.res.Name, id), true
		add += ",ifname=" + t.Ifname
	}
	for _, u := range r.res.Taps {
		if u.Ifname == t.Ifname {
			return nil, fmt.Errorf("netdevs %s and %s would both use tap %s", u.ID, id, t.Ifname)
		}
	}
	if r.o.TapFd > 0 {
		return r.tapFd(flag, id, o, t)
	}
	r.res.Taps = append(r.res.Taps, t)
	return []string{"-" + flag, val + add}, nil
}

// tapFd rewrites a tap netdev whose tap the launcher opens: fd=N instead
// of ifname=, script= and downscript=, which QEMU refuses beside fd=.
func (r *rewriter) tapFd(flag, id string, o opts, t Tap) ([]string, error) {
	t.Queues = 1
	if q, ok := o.get("queues"); ok {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 256 {
			return nil, fmt.Errorf("netdev %s: queues=%s is not a number from 1 to 256", id, q)
		}
		t.Queues = n
	}
	t.VnetHdr = true
	if v, ok := o.get("vnet_hdr"); ok && v == "off" {
		t.VnetHdr = false
	}
	t.FD = r.o.TapFd
	for _, u := range r.res.Taps {
		t.FD += u.Queues
	}
	var b strings.Builder
	for i, e := range o {
		switch e.key {
		case "ifname", "script", "downscript", "vnet_hdr", "queues":
			continue
		case "type":
			if i == 0 {
				b.WriteString(escape(e.val))
				continue
			}
		}
		b.WriteString("," + e.key + "=" + escape(e.val))
	}
	if t.Queues == 1 {
		b.WriteString(",fd=" + strconv.Itoa(t.FD))
	} else {
		// QEMU takes a multiqueue tap's descriptors as fds=a:b:...
		fds := make([]string, t.Queues)
		for i := range fds {
			fds[i] = strconv.Itoa(t.FD + i)
		}
		b.WriteString(",fds=" + strings.Join(fds, ":"))
	}
	r.res.Taps = append(r.res.Taps, t)
	return []string{"-" + flag, b.String()}, nil
}

// finish checks what needs the whole command line.
func (r *rewriter) finish() error {
	n, err := smpCount(r.smp)
	if err != nil {
		return fmt.Errorf("-smp %s: %w", r.smp, err)
	}
	r.res.VCPUs = n
	for _, p := range r.res.Pins {
		if p.VCPU >= n {
			return fmt.Errorf("-vcpu %s: vCPU %d does not exist: -smp gives %d vCPU(s), numbered from 0", r.vcpus[p.VCPU], p.VCPU, n)
		}
	}
	sort.Slice(r.res.Pins, func(i, j int) bool { return r.res.Pins[i].VCPU < r.res.Pins[j].VCPU })
	var unknown []string
	for id := range r.o.Settings {
		found := false
		for _, t := range r.res.Taps {
			found = found || t.ID == id
		}
		if !found {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("settings for netdev %s, but the command has no tap netdev with that id", strings.Join(unknown, ", "))
	}
	return nil
}

// vmName finds the VM's name (the last -name, as QEMU takes it) before the
// rewrite, as tap names derive from it wherever -name comes.
func vmName(args []string) string {
	name := DefaultName
	for i := 0; i < len(args); i++ {
		o := optName(args[i])
		if o == "" || noArg[o] || i+1 == len(args) {
			continue
		}
		i++
		if o != "name" {
			continue
		}
		if v, _ := parseOpts(args[i], "guest").get("guest"); v != "" {
			name = v
		}
	}
	return name
}

// maxVCPUs is far above any QEMU's limit; it keeps the arithmetic sane.
const maxVCPUs = 1 << 16

// smpCount is the number of vCPUs at start that -smp asks for.
func smpCount(v string) (int, error) {
	if v == "" {
		return 1, nil
	}
	prod := 1
	var cpus int
	for _, e := range parseOpts(v, "cpus") {
		n, err := strconv.Atoi(e.val)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%s is not a number", e.key, e.val)
		}
		switch e.key {
		case "cpus":
			cpus = n
		case "sockets", "dies", "clusters", "cores", "threads", "books", "drawers":
			if n > 0 {
				prod *= n
			}
		}
		if cpus > maxVCPUs || prod > maxVCPUs {
			return 0, fmt.Errorf("more than %d vCPUs", maxVCPUs)
		}
	}
	if cpus > 0 {
		return cpus, nil
	}
	return prod, nil
}

// TapName derives a tap name from the VM's name and the netdev id:
// "NAME-ID" when that is a valid name of at most 15 bytes, else a prefix
// of it and a hash of both, so that the name stays the same from run to
// run and differs between netdevs.
func TapName(vm, id string) string {
	n := vm + "-" + id
	if link.ValidateName(n) == nil && !strings.Contains(n, "%") {
		return n
	}
	sum := sha256.Sum256([]byte(vm + "\x00" + id))
	suffix := hex.EncodeToString(sum[:3])
	var b strings.Builder
	for _, c := range []byte(n) {
		if b.Len() == link.MaxNameLen-1-len(suffix) {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String() + "-" + suffix
	if name[0] == '-' {
		// A leading '-' would read as an option to the up-script.
		name = "_" + name[1:]
	}
	return name
}

// Shown is s as an error message may show it: see shown.
func Shown(s string) string { return shown(s) }

// shown is s as an error message may show it: as it is when it is valid
// UTF-8 without control characters, else quoted, so that an escape sequence
// or a carriage return in an argument never reaches a terminal or a log raw.
func shown(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// deviceMACs gives every -device on a tap netdev that names no guest MAC
// one derived from the VM's name and the netdev id: without it, QEMU gives
// every VM 52:54:00:12:34:56, and two VMs on one bridge collide.
func (r *rewriter) deviceMACs(args []string) []string {
	for i := 0; i+1 < len(args); i++ {
		if optName(args[i]) != "device" {
			continue
		}
		i++
		v := args[i]
		if strings.HasPrefix(v, "{") {
			continue
		}
		o := parseOpts(v, "driver")
		id, ok := o.get("netdev")
		if !ok || !r.tapIDs[id] {
			continue
		}
		mac, has := o.get("mac")
		if !has {
			mac = GuestMAC(r.res.Name, id).String()
			args[i] = v + ",mac=" + mac
		}
		r.guestMAC(id, mac)
	}
	return args
}

// guestMAC gives the tap of netdev id the guest's MAC for qemu-ifup (the
// static FDB entry of a port without learning, OVS's attached-mac). A MAC
// the settings refuse is QEMU's to complain about.
func (r *rewriter) guestMAC(id, mac string) {
	for i := range r.res.Taps {
		t := &r.res.Taps[i]
		if t.ID == id && !t.Settings.Has(ifconf.KeyGuestMAC) {
			_ = t.Settings.Set(ifconf.KeyGuestMAC, mac, ifconf.Origin{File: "-device"})
		}
	}
}

// GuestMAC is the guest MAC qemu-launch gives the NIC of netdev id in VM
// vm when none is given: locally administered, unicast, the rest from a
// hash of both names, so stable from run to run and distinct (46 bits)
// between VM/NIC pairs.
func GuestMAC(vm, id string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("qemu-launch guest MAC\x00" + vm + "\x00" + id))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}
