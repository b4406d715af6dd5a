package vmconf

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/shellwords"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// Load reads and parses the VM file at path.
func Load(path string) (*VM, error) {
	// A regular file, read with a bound and without blocking: a FIFO
	// or a huge file is an error, not a hang.
	data, err := rundir.ReadFile(path, unitfile.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("reading VM file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a VM file; file names it in errors ("file:line: Key: ...").
// Every error of the file is reported, one per line, so that one run
// shows all there is to fix; an unknown key or section names the closest
// known one.
func Parse(file string, data []byte) (*VM, error) {
	secs, err := unitfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	vm := &VM{Binary: DefaultBinary, Graphics: true, Lines: map[string]int{}}
	var errs []error
	sawVM := false
	for _, s := range secs {
		p := parser{file: file, sec: s, seen: map[string]int{}}
		var serr []error
		switch s.Name {
		case "VM":
			if sawVM {
				errs = append(errs, fmt.Errorf("%s:%d: second [VM] section", file, s.Line))
				continue
			}
			sawVM = true
			serr = p.each(vm.set)
			for _, e := range s.Entries {
				vm.Lines[e.Key] = e.Line
			}
		case "Drive":
			var d Drive
			if serr = p.each(d.set); serr == nil && d.File == "" {
				serr = append(serr, fmt.Errorf("%s:%d: [Drive] without File=", file, s.Line))
			}
			vm.Drives = append(vm.Drives, d)
		case "NIC":
			n := NIC{ID: "net" + strconv.Itoa(len(vm.NICs))}
			if serr = p.each(func(e unitfile.Entry) error { return n.set(file, e) }); serr == nil {
				if err := n.check(file, s.Line); err != nil {
					serr = append(serr, err)
				}
			}
			vm.NICs = append(vm.NICs, n)
		case "VCPU":
			v := VCPU{Index: -1, Line: s.Line}
			if serr = p.each(v.set); serr == nil && v.Index < 0 {
				serr = append(serr, fmt.Errorf("%s:%d: [VCPU] without Index=", file, s.Line))
			}
			vm.VCPU = append(vm.VCPU, v)
		case "IOThread":
			io := IOThread{Line: s.Line}
			if serr = p.each(io.set); serr == nil && io.ID == "" {
				serr = append(serr, fmt.Errorf("%s:%d: [IOThread] without ID=", file, s.Line))
			}
			vm.IO = append(vm.IO, io)
		case "QEMU":
			serr = p.each(func(e unitfile.Entry) error {
				if e.Key != "Arguments" {
					return errUnknownKey
				}
				words, err := shellwords.Split(e.Value)
				vm.Extra = append(vm.Extra, words...)
				return err
			})
		default:
			errs = append(errs, fmt.Errorf("%s:%d: unknown section [%s]%s (want [VM], [Drive], [NIC], [VCPU], [IOThread] or [QEMU])",
				file, s.Line, s.Name, didYouMean("["+s.Name+"]", sectionNames)))
		}
		errs = append(errs, serr...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := vm.check(file); err != nil {
		return nil, err
	}
	return vm, nil
}

var errUnknownKey = errors.New("unknown key")

// repeatable are the keys that may repeat in a section.
var repeatable = map[string]bool{"Arguments": true, "IPAddress": true}

// parser applies the entries of one section, checking for unknown and
// repeated keys (only [QEMU] Arguments= and [NIC] IPAddress= may repeat).
type parser struct {
	file string
	sec  unitfile.Section
	seen map[string]int
}

// each applies set to every entry and returns every error, one per entry.
func (p parser) each(set func(unitfile.Entry) error) []error {
	var errs []error
	for _, e := range p.sec.Entries {
		if first, dup := p.seen[e.Key]; dup && !repeatable[e.Key] {
			errs = append(errs, fmt.Errorf("%s:%d: %s= given twice in [%s] (first at line %d)", p.file, e.Line, e.Key, p.sec.Name, first))
			continue
		}
		p.seen[e.Key] = e.Line
		if err := set(e); err != nil {
			if errors.Is(err, errUnknownKey) {
				errs = append(errs, fmt.Errorf("%s:%d: unknown key %s= in [%s]%s", p.file, e.Line, e.Key, p.sec.Name,
					didYouMean(e.Key+"=", keyNames[p.sec.Name])))
				continue
			}
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", p.file, e.Line, e.Key, err))
		}
	}
	return errs
}

var (
	memRe  = regexp.MustCompile(`^[0-9]+[kKmMgGtT]?$`)
	wordRe = regexp.MustCompile(`^[A-Za-z0-9_.:+-]+$`)
	uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

func (vm *VM) set(e unitfile.Entry) error {
	v := e.Value
	var err error
	switch e.Key {
	case "QEMU":
		vm.Binary, err = nonEmpty(v)
	case "Name":
		vm.Name, err = nonEmpty(v)
	case "Process":
		vm.Process, err = nonEmpty(v)
	case "UUID":
		if !uuidRe.MatchString(v) {
			return fmt.Errorf("%q is not a UUID (8f3c4a55-1b2c-4d5e-8f90-123456789abc)", v)
		}
		vm.UUID = v
	case "Machine":
		vm.Machine, err = nonEmpty(v)
	case "Accel":
		vm.Accel, err = word(v)
	case "CPU":
		vm.CPUModel, err = nonEmpty(v)
	case "Memory":
		if !memRe.MatchString(v) {
			return fmt.Errorf("%q is not a size (512, 512M, 2G)", v)
		}
		vm.Memory = v
	case "VCPUs":
		vm.VCPUs, err = number(v, 1, 4096)
	case "HostCPUs":
		vm.HostCPUs, err = cpuset.ParseList(v)
	case "EmulatorCPUs":
		vm.EmulatorCPUs, err = cpuset.ParseList(v)
	case "User":
		vm.User, err = word(v)
	case "MemoryLock":
		var b bool
		b, err = unitfile.ParseBool(v)
		vm.MemoryLock = map[bool]string{true: "on", false: "off"}[b]
	case "Kernel":
		vm.Kernel, err = nonEmpty(v)
	case "Initrd":
		vm.Initrd, err = nonEmpty(v)
	case "Append":
		vm.Append = v
	case "NoReboot":
		vm.NoReboot, err = unitfile.ParseBool(v)
	case "Graphics":
		vm.Graphics, err = unitfile.ParseBool(v)
	case "Paused":
		vm.Paused, err = unitfile.ParseBool(v)
	case "ShutdownTimeout":
		vm.ShutdownTimeout, err = time.ParseDuration(v)
		if err == nil && vm.ShutdownTimeout <= 0 {
			err = fmt.Errorf("%q is not a positive duration", v)
		}
	default:
		return errUnknownKey
	}
	return err
}

func (d *Drive) set(e unitfile.Entry) error {
	var err error
	switch e.Key {
	case "File":
		d.File, err = nonEmpty(e.Value)
	case "Interface":
		d.Interface, err = word(e.Value)
	case "Format":
		d.Format, err = word(e.Value)
	case "Options":
		d.Options = e.Value
	default:
		return errUnknownKey
	}
	return err
}

var macRe = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)

func (n *NIC) set(file string, e unitfile.Entry) error {
	v := e.Value
	var err error
	switch e.Key {
	case "ID":
		n.ID, err = word(v)
	case "Model":
		n.Model, err = word(v)
	case "MACAddress":
		if !macRe.MatchString(v) {
			return fmt.Errorf("%q is not a MAC address (52:54:00:12:34:56)", v)
		}
		n.MACAddress = v
	case "Ifname":
		err = link.ValidateName(v)
		n.Ifname = v
	case "Script":
		n.Script, err = nonEmpty(v)
	case "DownScript":
		n.DownScript, err = nonEmpty(v)
	default:
		k, ok := nicKey(e.Key)
		if !ok {
			return errUnknownKey
		}
		err = n.Settings.Set(k, v, ifconf.Origin{File: file, Line: e.Line})
	}
	return err
}

// nicKey is the port setting a [NIC] key gives, of those a VM file may
// give: the settings' key of the same name, and HostMAC= for MAC=, the
// host side's MAC policy, named apart from the guest's MACAddress=.
func nicKey(name string) (ifconf.Key, bool) {
	if name == "HostMAC" {
		return ifconf.KeyMAC, true
	}
	k, ok := ifconf.KeyNamed(name)
	switch k {
	case ifconf.KeyBridge, ifconf.KeyMTU, ifconf.KeyVLAN, ifconf.KeyTrunks,
		ifconf.KeyIsolated, ifconf.KeyLearning, ifconf.KeyUnicastFlood,
		ifconf.KeyLogicalPort, ifconf.KeyOVNWait,
		ifconf.KeyInboundRate, ifconf.KeyInboundBurst, ifconf.KeyOutboundRate, ifconf.KeyOutboundBurst,
		ifconf.KeySpoofing, ifconf.KeyIPAddress:
		return k, ok
	}
	return 0, false
}

func (n *NIC) check(file string, line int) error {
	if n.Script != "" && !n.Settings.IsZero() {
		return fmt.Errorf("%s:%d: [NIC] %s: Bridge=, MTU=, HostMAC=, VLAN=, Trunks=, Isolated=, Learning=, UnicastFlood=, LogicalPort=, OVNWait=, the rates and bursts, Spoofing= and IPAddress= are for qemu-launch's qemu-ifup; they cannot go with Script=", file, line, n.ID)
	}
	return nil
}

func (v *VCPU) set(e unitfile.Entry) error {
	var err error
	switch e.Key {
	case "Index":
		v.Index, err = number(e.Value, 0, 4095)
	case "Affinity":
		v.Affinity, err = cpuset.Parse(e.Value)
		v.Line = e.Line
	case "Priority":
		v.Priority, err = number(e.Value, 0, 99)
	default:
		return errUnknownKey
	}
	return err
}

func (io *IOThread) set(e unitfile.Entry) error {
	var err error
	switch e.Key {
	case "ID":
		io.ID, err = word(e.Value)
	case "CPUs":
		io.CPUs, err = cpuset.ParseList(e.Value)
		io.Line = e.Line
	default:
		return errUnknownKey
	}
	return err
}

// check looks across sections and returns every problem it finds.
func (vm *VM) check(file string) error {
	var errs []error
	ids := map[string]bool{}
	for _, n := range vm.NICs {
		if ids[n.ID] {
			errs = append(errs, fmt.Errorf("%s: two [NIC] sections with ID=%s", file, n.ID))
		}
		ids[n.ID] = true
	}
	if !vm.HostCPUs.Empty() && !vm.EmulatorCPUs.Minus(vm.HostCPUs).Empty() {
		errs = append(errs, fmt.Errorf("%s: EmulatorCPUs=%s is outside HostCPUs=%s", file, vm.EmulatorCPUs, vm.HostCPUs))
	}
	ios := map[string]bool{}
	for _, io := range vm.IO {
		if ios[io.ID] {
			errs = append(errs, fmt.Errorf("%s: two [IOThread] sections with ID=%s", file, io.ID))
		}
		ios[io.ID] = true
		if !vm.HostCPUs.Empty() && !io.CPUs.Minus(vm.HostCPUs).Empty() {
			errs = append(errs, fmt.Errorf("%s: [IOThread] ID=%s: CPUs=%s is outside HostCPUs=%s", file, io.ID, io.CPUs, vm.HostCPUs))
		}
	}
	idx := map[int]bool{}
	for _, v := range vm.VCPU {
		if idx[v.Index] {
			errs = append(errs, fmt.Errorf("%s: two [VCPU] sections with Index=%d", file, v.Index))
		}
		idx[v.Index] = true
		n := vm.VCPUs
		if n == 0 {
			n = 1
		}
		if v.Index >= n {
			errs = append(errs, fmt.Errorf("%s: [VCPU] Index=%d: the VM has %d vCPU(s) (VCPUs=)", file, v.Index, n))
		}
		if !vm.HostCPUs.Empty() && !v.Affinity.Minus(vm.HostCPUs).Empty() {
			errs = append(errs, fmt.Errorf("%s: [VCPU] Index=%d: Affinity=%s is outside HostCPUs=%s", file, v.Index, v.Affinity, vm.HostCPUs))
		}
	}
	return errors.Join(errs...)
}

func nonEmpty(v string) (string, error) {
	if v == "" {
		return "", errors.New("empty value")
	}
	return v, nil
}

func word(v string) (string, error) {
	if !wordRe.MatchString(v) {
		return "", fmt.Errorf("%q is not a plain word", v)
	}
	return v, nil
}

func number(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a number from %d to %d", v, lo, hi)
	}
	return n, nil
}
