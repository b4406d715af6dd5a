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
//
//	[VCPU]
//	Index=1
//	Affinity=3
//	Priority=80
//
//	[NIC]
//	ID=vm0
//	Model=e1000
//	Bridge=br0
package vmconf

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// DefaultBinary is the QEMU run when [VM] has no QEMU=.
const DefaultBinary = "qemu-system-x86_64"

// A VM is a parsed VM file.
type VM struct {
	Binary          string
	Name            string
	Process         string // -name ...,process=
	Machine         string
	Accel           string
	CPUModel        string
	Memory          string
	VCPUs           int // 0: QEMU's default
	HostCPUs        cpuset.Set
	MemoryLock      string // "", "on" or "off"
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
	Extra  []string // [QEMU] Arguments=
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
	Settings              ifconf.Settings // Bridge=, MTU=, HostMAC=
}

// A VCPU is a [VCPU] section: one -vcpu.
type VCPU struct {
	Index    int
	Affinity cpuset.Set
	Priority int
}

// Load reads and parses the VM file at path.
func Load(path string) (*VM, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading VM file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a VM file; file names it in errors ("file:line: Key: ...").
func Parse(file string, data []byte) (*VM, error) {
	secs, err := unitfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	vm := &VM{Binary: DefaultBinary, Graphics: true}
	sawVM := false
	for _, s := range secs {
		p := parser{file: file, sec: s, seen: map[string]int{}}
		var err error
		switch s.Name {
		case "VM":
			if sawVM {
				return nil, fmt.Errorf("%s:%d: second [VM] section", file, s.Line)
			}
			sawVM = true
			err = p.each(vm.set)
		case "Drive":
			var d Drive
			if err = p.each(d.set); err == nil && d.File == "" {
				err = fmt.Errorf("%s:%d: [Drive] without File=", file, s.Line)
			}
			vm.Drives = append(vm.Drives, d)
		case "NIC":
			n := NIC{ID: "net" + strconv.Itoa(len(vm.NICs))}
			if err = p.each(n.set); err == nil {
				err = n.check(file, s.Line)
			}
			vm.NICs = append(vm.NICs, n)
		case "VCPU":
			v := VCPU{Index: -1}
			if err = p.each(v.set); err == nil && v.Index < 0 {
				err = fmt.Errorf("%s:%d: [VCPU] without Index=", file, s.Line)
			}
			vm.VCPU = append(vm.VCPU, v)
		case "QEMU":
			err = p.each(func(e unitfile.Entry) error {
				if e.Key != "Arguments" {
					return errUnknownKey
				}
				words, err := SplitWords(e.Value)
				vm.Extra = append(vm.Extra, words...)
				return err
			})
		default:
			return nil, fmt.Errorf("%s:%d: unknown section [%s] (want [VM], [Drive], [NIC], [VCPU] or [QEMU])", file, s.Line, s.Name)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := vm.check(file); err != nil {
		return nil, err
	}
	return vm, nil
}

var errUnknownKey = errors.New("unknown key")

// parser applies the entries of one section, checking for unknown and
// repeated keys (only [QEMU] Arguments= may repeat).
type parser struct {
	file string
	sec  unitfile.Section
	seen map[string]int
}

func (p parser) each(set func(unitfile.Entry) error) error {
	for _, e := range p.sec.Entries {
		if first, dup := p.seen[e.Key]; dup && e.Key != "Arguments" {
			return fmt.Errorf("%s:%d: %s= given twice in [%s] (first at line %d)", p.file, e.Line, e.Key, p.sec.Name, first)
		}
		p.seen[e.Key] = e.Line
		if err := set(e); err != nil {
			if errors.Is(err, errUnknownKey) {
				return fmt.Errorf("%s:%d: unknown key %s= in [%s]", p.file, e.Line, e.Key, p.sec.Name)
			}
			return fmt.Errorf("%s:%d: %s: %w", p.file, e.Line, e.Key, err)
		}
	}
	return nil
}

var (
	memRe  = regexp.MustCompile(`^[0-9]+[kKmMgGtT]?$`)
	wordRe = regexp.MustCompile(`^[A-Za-z0-9_.:+-]+$`)
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

func (n *NIC) set(e unitfile.Entry) error {
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
	case "Bridge":
		err = link.ValidateName(v)
		n.Settings.Bridge = v
	case "MTU":
		if v == "bridge" {
			return nil
		}
		n.Settings.MTU, err = number(v, 68, 65535)
	case "HostMAC":
		if v != "high" && v != "keep" {
			return fmt.Errorf("%q is not high or keep", v)
		}
		n.Settings.MAC = v
	default:
		return errUnknownKey
	}
	return err
}

func (n *NIC) check(file string, line int) error {
	if n.Script != "" && n.Settings != (ifconf.Settings{}) {
		return fmt.Errorf("%s:%d: [NIC] %s: Bridge=, MTU= and HostMAC= are for qemu-launch's qemu-ifup; they cannot go with Script=", file, line, n.ID)
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
	case "Priority":
		v.Priority, err = number(e.Value, 0, 99)
	default:
		return errUnknownKey
	}
	return err
}

// check looks across sections.
func (vm *VM) check(file string) error {
	ids := map[string]bool{}
	for _, n := range vm.NICs {
		if ids[n.ID] {
			return fmt.Errorf("%s: two [NIC] sections with ID=%s", file, n.ID)
		}
		ids[n.ID] = true
	}
	idx := map[int]bool{}
	for _, v := range vm.VCPU {
		if idx[v.Index] {
			return fmt.Errorf("%s: two [VCPU] sections with Index=%d", file, v.Index)
		}
		idx[v.Index] = true
		n := vm.VCPUs
		if n == 0 {
			n = 1
		}
		if v.Index >= n {
			return fmt.Errorf("%s: [VCPU] Index=%d: the VM has %d vCPU(s) (VCPUs=)", file, v.Index, n)
		}
		if !vm.HostCPUs.Empty() && !v.Affinity.Minus(vm.HostCPUs).Empty() {
			return fmt.Errorf("%s: [VCPU] Index=%d: Affinity=%s is outside HostCPUs=%s", file, v.Index, v.Affinity, vm.HostCPUs)
		}
	}
	return nil
}

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
		if n.Settings != (ifconf.Settings{}) {
			m[n.ID] = n.Settings
		}
	}
	return m
}

func esc(v string) string { return strings.ReplaceAll(v, ",", ",,") }

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

// SplitWords splits a value into words as a shell would, without
// expansions: blanks separate words, single quotes keep everything,
// double quotes keep all but backslash escapes, a backslash escapes the
// next character.
func SplitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New(`unterminated " quote`)
			}
			in = true
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
