package ifconf

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

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

// originDefault names the origin of a built-in default.
const originDefault = "default"

// IsDefault reports whether o is a built-in default's.
func (o Origin) IsDefault() bool { return o == Origin{File: originDefault} }

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

// A Key is one KEY= of the settings.
type Key int

// The keys, in the order records list them.
const (
	KeyBridge Key = iota
	KeyMTU
	KeyMAC
	KeyPromiscuous
	KeyAllowMove
	KeyVLAN
	KeyTrunks
	KeyIsolated
	KeyLearning
	KeyUnicastFlood
	KeyGuestMAC
	KeyVMName
	KeyLogicalPort
	KeyOVNWait
	KeyVMUUID
	KeyInboundRate
	KeyInboundBurst
	KeyOutboundRate
	KeyOutboundBurst
	KeySpoofing
	KeyIPAddress
	numKeys
)

// String is the key's name, as files spell it.
func (k Key) String() string { return keys[k].name }

// KeyNamed returns the key called name.
func KeyNamed(name string) (Key, bool) {
	for k := range numKeys {
		if keys[k].name == name {
			return k, true
		}
	}
	return 0, false
}

// A key is how one Key reads, writes and carries over its value.
type key struct {
	name   string
	parse  func(p *tap.Port, v string) error
	format func(p tap.Port) string
	// take sets in p the value src has.
	take func(p *tap.Port, src tap.Port)
}

// keys is the one table of the settings' keys, their parsers and checks.
var keys = [numKeys]key{
	KeyBridge: {"Bridge", func(p *tap.Port, v string) error {
		if err := link.ValidateName(v); err != nil {
			return err
		}
		p.Bridge = v
		return nil
	}, func(p tap.Port) string { return p.Bridge },
		func(p *tap.Port, src tap.Port) { p.Bridge = src.Bridge }},
	KeyMTU: {"MTU", func(p *tap.Port, v string) error {
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
	}, func(p *tap.Port, src tap.Port) { p.MTU = src.MTU }},
	KeyMAC: {"MAC", func(p *tap.Port, v string) (err error) {
		p.MAC, err = tap.ParseMACPolicy(v)
		return err
	}, func(p tap.Port) string { return p.MAC.String() },
		func(p *tap.Port, src tap.Port) { p.MAC = src.MAC }},
	KeyPromiscuous: {"Promiscuous", func(p *tap.Port, v string) (err error) {
		p.Promisc, err = unitfile.ParseBool(v)
		return err
	}, func(p tap.Port) string { return yesNo(p.Promisc) },
		func(p *tap.Port, src tap.Port) { p.Promisc = src.Promisc }},
	KeyAllowMove: {"AllowMove", func(p *tap.Port, v string) (err error) {
		p.AllowMove, err = unitfile.ParseBool(v)
		return err
	}, func(p tap.Port) string { return yesNo(p.AllowMove) },
		func(p *tap.Port, src tap.Port) { p.AllowMove = src.AllowMove }},
	KeyVLAN: {"VLAN", func(p *tap.Port, v string) (err error) {
		p.VLAN, err = bridge.ParseVLAN(v)
		return err
	}, func(p tap.Port) string { return strconv.Itoa(p.VLAN) },
		func(p *tap.Port, src tap.Port) { p.VLAN = src.VLAN }},
	KeyTrunks: {"Trunks", func(p *tap.Port, v string) (err error) {
		p.Trunks, err = bridge.ParseVLANs(v)
		return err
	}, func(p tap.Port) string { return p.Trunks.String() },
		func(p *tap.Port, src tap.Port) { p.Trunks = src.Trunks }},
	KeyIsolated:     flagKey("Isolated", bridge.FlagIsolated),
	KeyLearning:     flagKey("Learning", bridge.FlagLearning),
	KeyUnicastFlood: flagKey("UnicastFlood", bridge.FlagUnicastFlood),
	KeyGuestMAC: {"GuestMAC", func(p *tap.Port, v string) error {
		mac, err := net.ParseMAC(v)
		switch {
		case err != nil || len(mac) != 6:
			return fmt.Errorf("%q is not an Ethernet MAC address", v)
		case mac[0]&1 != 0:
			return fmt.Errorf("%s is a multicast address, which no NIC has", mac)
		}
		p.GuestMAC = mac.String()
		return nil
	}, func(p tap.Port) string { return p.GuestMAC },
		func(p *tap.Port, src tap.Port) { p.GuestMAC = src.GuestMAC }},
	KeyVMName: {"VMName", func(p *tap.Port, v string) error {
		if err := checkVMName(v); err != nil {
			return err
		}
		p.VMName = v
		return nil
	}, func(p tap.Port) string { return p.VMName },
		func(p *tap.Port, src tap.Port) { p.VMName = src.VMName }},
	KeyLogicalPort: {"LogicalPort", func(p *tap.Port, v string) error {
		if err := checkLogicalPort(v); err != nil {
			return err
		}
		p.LogicalPort = v
		return nil
	}, func(p tap.Port) string { return p.LogicalPort },
		func(p *tap.Port, src tap.Port) { p.LogicalPort = src.LogicalPort }},
	KeyOVNWait: {"OVNWait", func(p *tap.Port, v string) (err error) {
		p.OVNWait, err = parseWait(v)
		return err
	}, func(p tap.Port) string { return p.OVNWait.String() },
		func(p *tap.Port, src tap.Port) { p.OVNWait = src.OVNWait }},
	KeyVMUUID: {"VMUUID", func(p *tap.Port, v string) error {
		if !uuidRe.MatchString(v) {
			return fmt.Errorf("%q is not a UUID (8f3c4a55-1b2c-4d5e-8f90-123456789abc)", v)
		}
		p.VMUUID = strings.ToLower(v)
		return nil
	}, func(p tap.Port) string { return p.VMUUID },
		func(p *tap.Port, src tap.Port) { p.VMUUID = src.VMUUID }},
	KeyInboundRate:   rateKey("InboundRate", func(p *tap.Port) *bridge.Limit { return &p.Inbound }),
	KeyInboundBurst:  burstKey("InboundBurst", func(p *tap.Port) *bridge.Limit { return &p.Inbound }),
	KeyOutboundRate:  rateKey("OutboundRate", func(p *tap.Port) *bridge.Limit { return &p.Outbound }),
	KeyOutboundBurst: burstKey("OutboundBurst", func(p *tap.Port) *bridge.Limit { return &p.Outbound }),
	KeySpoofing: {"Spoofing", func(p *tap.Port, v string) error {
		switch v {
		case "deny":
			p.DenySpoofing = true
		case "allow":
			p.DenySpoofing = false
		default:
			return fmt.Errorf("%q is neither deny nor allow", v)
		}
		return nil
	}, func(p tap.Port) string {
		if p.DenySpoofing {
			return "deny"
		}
		return "allow"
	}, func(p *tap.Port, src tap.Port) { p.DenySpoofing = src.DenySpoofing }},
	// IPAddress= may repeat: each adds its addresses; an empty one
	// drops those given before.
	KeyIPAddress: {"IPAddress", func(p *tap.Port, v string) error {
		if v == "" {
			p.Addrs = bridge.Addrs{}
			return nil
		}
		return p.Addrs.Add(v)
	}, func(p tap.Port) string { return p.Addrs.String() },
		func(p *tap.Port, src tap.Port) { p.Addrs = src.Addrs }},
}

// rateKey is the key of the rate of the limit of a port that limit gives.
func rateKey(name string, limit func(*tap.Port) *bridge.Limit) key {
	return key{name, func(p *tap.Port, v string) error {
		r, err := bridge.ParseRate(v)
		limit(p).Rate = r
		return err
	}, func(p tap.Port) string { return bridge.FormatRate(limit(&p).Rate) },
		func(p *tap.Port, src tap.Port) { limit(p).Rate = limit(&src).Rate }}
}

// burstKey is the key of the burst of the limit of a port that limit
// gives.
func burstKey(name string, limit func(*tap.Port) *bridge.Limit) key {
	return key{name, func(p *tap.Port, v string) error {
		b, err := bridge.ParseBurst(v)
		limit(p).Burst = b
		return err
	}, func(p tap.Port) string { return bridge.FormatBurst(limit(&p).Burst) },
		func(p *tap.Port, src tap.Port) { limit(p).Burst = limit(&src).Burst }}
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkLogicalPort accepts what can name an OVN logical switch port in
// Open vSwitch's external-ids and in a log line: 1 to 255 printable ASCII
// characters without spaces, quotes or backslashes (names and UUIDs, as
// OpenStack and ovn-kubernetes give them).
func checkLogicalPort(v string) error {
	if v == "" || len(v) > 255 {
		return fmt.Errorf("%q is not 1 to 255 characters long", v)
	}
	for _, r := range v {
		if r <= 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return fmt.Errorf("%q has a character other than printable ASCII without spaces, quotes and backslashes", v)
		}
	}
	return nil
}

// maxWait bounds OVNWait=: QEMU waits for qemu-ifup all that time.
const maxWait = 10 * time.Minute

// parseWait parses a wait: seconds ("30") or a duration ("30s", "2m"),
// from 1 s to maxWait.
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.Atoi(v); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil || d < time.Second || d > maxWait {
		return 0, fmt.Errorf("%q is not a time from 1s to %s (30, 30s, 2m)", v, maxWait)
	}
	return d, nil
}

// flagKeys are the keys of the bridge port flags.
var flagKeys = [...]Key{
	bridge.FlagIsolated:     KeyIsolated,
	bridge.FlagLearning:     KeyLearning,
	bridge.FlagUnicastFlood: KeyUnicastFlood,
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
	}, func(p *tap.Port, src tap.Port) {
		if on, given := src.Flags.Get(f); given {
			p.Flags.Set(f, on)
		}
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

// ErrUnknownKey is returned (wrapped) by SetNamed for a key it does not
// know.
var ErrUnknownKey = errors.New("unknown key")

// Set parses value for k and, if it is valid, records it as given at
// from. The error names neither the key nor from, which the caller knows.
func (s *Settings) Set(k Key, value string, from Origin) error {
	p := s.port
	if err := keys[k].parse(&p, value); err != nil {
		return err
	}
	s.port, s.given[k], s.from[k] = p, true, from
	return nil
}

// SetNamed is Set for the key called name, as a file spells it.
func (s *Settings) SetNamed(name, value string, from Origin) error {
	k, ok := KeyNamed(name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownKey, name)
	}
	return s.Set(k, value, from)
}

// setEntry sets an entry of file, with errors as "file:line: Key: reason".
func (s *Settings) setEntry(file string, e unitfile.Entry) error {
	err := s.SetNamed(e.Key, e.Value, Origin{File: file, Line: e.Line})
	switch {
	case errors.Is(err, ErrUnknownKey):
		return fmt.Errorf("%s:%d: %w", file, e.Line, err)
	case err != nil:
		return fmt.Errorf("%s:%d: %s: %w", file, e.Line, e.Key, err)
	}
	return nil
}

// Has reports whether k was given.
func (s Settings) Has(k Key) bool { return s.given[k] }

// Origin returns where k was given; the zero Origin if it was not.
func (s Settings) Origin(k Key) Origin { return s.from[k] }

// IsZero reports whether no key was given.
func (s Settings) IsZero() bool { return s.given == [numKeys]bool{} }

// Merge gives s every key o gives, with o's value and origin.
func (s *Settings) Merge(o Settings) {
	for k := range numKeys {
		if o.given[k] {
			keys[k].take(&s.port, o.port)
			s.given[k], s.from[k] = true, o.from[k]
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
	for k := range numKeys {
		if s.given[k] {
			out = append(out, &unit.UnitEntry{Name: keys[k].name, Value: keys[k].format(s.port)})
		}
	}
	return out
}

// Defaults are the settings qemu-ifup uses where nothing else gives one:
// bridge virbr0, the bridge's MTU, a high MAC, promiscuous on.
func Defaults() Settings {
	s := Settings{port: tap.Port{Bridge: DefaultBridge, MAC: tap.MACHigh, Promisc: true}}
	for _, k := range []Key{KeyBridge, KeyMAC, KeyPromiscuous} {
		s.given[k], s.from[k] = true, Origin{File: originDefault}
	}
	return s
}
