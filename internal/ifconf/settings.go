package ifconf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// An Origin is where a setting was given: a file and a line, or a name
// alone (an environment variable, a command-line option, "default").
type Origin struct {
	File string
	Line int // 0: File is a name, not a file
}

func (o Origin) String() string {
	if o.Line == 0 {
		return o.File
	}
	return o.File + ":" + strconv.Itoa(o.Line)
}

// Settings are the port settings given for a tap, the one model of them
// whatever their source (the config file, the launcher's record, the VM
// file, the environment, a command-line option): each key that was given,
// its typed value and where it was given. Set parses and checks every
// value; Port returns them for tap.PlanUp.
//
// The zero Settings give nothing. Settings are values: copies are
// independent, and == compares the values and their origins.
type Settings struct {
	port  tap.Port
	given [numKeys]bool
	from  [numKeys]Origin
}

// A key is one KEY= of the settings, in the order records list them.
type key struct {
	name   string
	parse  func(p *tap.Port, v string) error
	format func(p tap.Port) string
}

const numKeys = 12

// keys is the one table of the settings' keys, their parsers and checks.
var keys = [numKeys]key{
	{"Bridge", func(p *tap.Port, v string) error {
		if err := link.ValidateName(v); err != nil {
			return err
		}
		p.Bridge = v
		return nil
	}, func(p tap.Port) string { return p.Bridge }},
	{"MTU", func(p *tap.Port, v string) error {
		if v == "bridge" {
			p.MTU = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 68 || n > 65535 {
			return fmt.Errorf("%q is not \"bridge\" or a number from 68 to 65535", v)
		}
		p.MTU = n
		return nil
	}, func(p tap.Port) string {
		if p.MTU == 0 {
			return "bridge"
		}
		return strconv.Itoa(p.MTU)
	}},
	{"MAC", func(p *tap.Port, v string) (err error) {
		p.MAC, err = tap.ParseMACPolicy(v)
		return err
	}, func(p tap.Port) string { return p.MAC.String() }},
	{"Promiscuous", func(p *tap.Port, v string) (err error) {
		p.Promisc, err = unitfile.ParseBool(v)
		return err
	}, func(p tap.Port) string { return yesNo(p.Promisc) }},
	{"AllowMove", func(p *tap.Port, v string) (err error) {
		p.AllowMove, err = unitfile.ParseBool(v)
		return err
	}, func(p tap.Port) string { return yesNo(p.AllowMove) }},
	{"VLAN", func(p *tap.Port, v string) (err error) {
		p.VLAN, err = bridge.ParseVLAN(v)
		return err
	}, func(p tap.Port) string { return strconv.Itoa(p.VLAN) }},
	{"Trunks", func(p *tap.Port, v string) (err error) {
		p.Trunks, err = bridge.ParseVLANs(v)
		return err
	}, func(p tap.Port) string { return p.Trunks.String() }},
	flagKey("Isolated", bridge.FlagIsolated),
	flagKey("Learning", bridge.FlagLearning),
	flagKey("UnicastFlood", bridge.FlagUnicastFlood),
	{"GuestMAC", func(p *tap.Port, v string) error {
		mac, err := net.ParseMAC(v)
		switch {
		case err != nil || len(mac) != 6:
			return fmt.Errorf("%q is not an Ethernet MAC address", v)
		case mac[0]&1 != 0:
			return fmt.Errorf("%s is a multicast address, which no NIC has", mac)
		}
		p.GuestMAC = mac.String()
		return nil
	}, func(p tap.Port) string { return p.GuestMAC }},
	{"VMName", func(p *tap.Port, v string) error {
		if err := checkVMName(v); err != nil {
			return err
		}
		p.VMName = v
		return nil
	}, func(p tap.Port) string { return p.VMName }},
}

// flagKey is the key of a bridge port flag: yes or no.
func flagKey(name string, f bridge.Flag) key {
	return key{name, func(p *tap.Port, v string) error {
		on, err := unitfile.ParseBool(v)
		if err != nil {
			return err
		}
		p.Flags.Set(f, on)
		return nil
	}, func(p tap.Port) string {
		on, _ := p.Flags.Get(f)
		return yesNo(on)
	}}
}

// checkVMName accepts what can name a guest in Open vSwitch's external-ids
// and in a log line: 1 to 64 printable ASCII characters without quotes or
// backslashes.
func checkVMName(v string) error {
	if v == "" || len(v) > 64 {
		return fmt.Errorf("%q is not 1 to 64 characters long", v)
	}
	for _, r := range v {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return fmt.Errorf("%q has a character other than printable ASCII without quotes and backslashes", v)
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ErrUnknownKey is returned (wrapped) by Set for a key it does not know.
var ErrUnknownKey = errors.New("unknown key")

func keyIndex(name string) int {
	for i, k := range keys {
		if k.name == name {
			return i
		}
	}
	return -1
}

// Set parses value for key and, if it is valid, records it as given at
// from. The error names neither the key nor from, which the caller knows.
func (s *Settings) Set(key, value string, from Origin) error {
	i := keyIndex(key)
	if i < 0 {
		return fmt.Errorf("%w %q", ErrUnknownKey, key)
	}
	p := s.port
	if err := keys[i].parse(&p, value); err != nil {
		return err
	}
	s.port, s.given[i], s.from[i] = p, true, from
	return nil
}

// setEntry sets an entry of file, with errors as "file:line: Key: reason".
func (s *Settings) setEntry(file string, e unitfile.Entry) error {
	err := s.Set(e.Key, e.Value, Origin{File: file, Line: e.Line})
	switch {
	case errors.Is(err, ErrUnknownKey):
		return fmt.Errorf("%s:%d: %w", file, e.Line, err)
	case err != nil:
		return fmt.Errorf("%s:%d: %s: %w", file, e.Line, e.Key, err)
	}
	return nil
}

// Has reports whether key was given.
func (s Settings) Has(key string) bool {
	i := keyIndex(key)
	return i >= 0 && s.given[i]
}

// Origin returns where key was given; the zero Origin if it was not.
func (s Settings) Origin(key string) Origin {
	if i := keyIndex(key); i >= 0 {
		return s.from[i]
	}
	return Origin{}
}

// IsZero reports whether no key was given.
func (s Settings) IsZero() bool { return s.given == [numKeys]bool{} }

// Merge gives s every key o gives, with o's value and origin.
func (s *Settings) Merge(o Settings) {
	for i, k := range keys {
		if o.given[i] {
			// A value o parsed parses again.
			_ = k.parse(&s.port, k.format(o.port))
			s.given[i], s.from[i] = true, o.from[i]
		}
	}
}

// Port returns the settings as the port tap.PlanUp makes; keys not given
// keep the zero values of tap.Port (see Defaults).
func (s Settings) Port() tap.Port { return s.port }

// Equal reports whether s and o give the same keys the same values,
// wherever they were given.
func (s Settings) Equal(o Settings) bool { return s.port == o.port && s.given == o.given }

// String lists the keys given as "Key=value" in record order, as a record
// holds them.
func (s Settings) String() string {
	var parts []string
	for _, e := range s.entries() {
		parts = append(parts, e.Name+"="+e.Value)
	}
	return strings.Join(parts, " ")
}

func (s Settings) entries() []*unit.UnitEntry {
	var out []*unit.UnitEntry
	for i, k := range keys {
		if s.given[i] {
			out = append(out, &unit.UnitEntry{Name: k.name, Value: k.format(s.port)})
		}
	}
	return out
}

// Defaults are the settings qemu-ifup uses where nothing else gives one:
// bridge virbr0, the bridge's MTU, a high MAC, promiscuous on.
func Defaults() Settings {
	s := Settings{port: tap.Port{Bridge: DefaultBridge, MAC: tap.MACHigh, Promisc: true}}
	for _, k := range []string{"Bridge", "MAC", "Promiscuous"} {
		i := keyIndex(k)
		s.given[i], s.from[i] = true, Origin{File: "default"}
	}
	return s
}
