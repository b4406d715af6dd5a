// Package qemuargs rewrites a QEMU command line for qemu-launch: it wires
// tap netdevs to the tap helpers, translates the options stock QEMU lacks
// (-realtime, -vcpu) and adds the launcher's private QMP monitor. It is
// pure: it runs nothing and touches no file.
package qemuargs

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
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

type rewriter struct {
	o       Options
	caps    *Caps
	res     Result
	netdevs int             // taps seen, for ids of -nic/-net without one
	tapIDs  map[string]bool // ids of every tap netdev
	lastID  string          // id of the tap netdev option just read
	vcpus   map[int]string  // -vcpu options seen, by index
	smp     string
	uuid    string // the VM's -uuid, "" for none
}

// Rewrite rewrites args, the arguments after the QEMU binary.
func Rewrite(args []string, o Options) (*Result, error) {
	r := &rewriter{o: o, vcpus: map[int]string{}, tapIDs: map[string]bool{}}
	r.res.Name, r.uuid = vmName(args), vmUUID(args)
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
			return nil, fmt.Errorf("%s %s: %w", w, Shown(args[i]), err)
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

// Shown is s as an error message may show it: as it is when it is valid
// UTF-8 without control characters, else quoted, so that an escape sequence
// or a carriage return in an argument never reaches a terminal or a log raw.
func Shown(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strconv.Quote(s)
}
