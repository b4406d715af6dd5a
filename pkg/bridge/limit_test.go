package bridge

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"1M", 1_000_000, false},
		{"1m", 1_000_000, false},
		{"500K", 500_000, false},
		{"2G", 2_000_000_000, false},
		{"8000", 8000, false},
		{"7K", 0, true},
		{"2T", 0, true},
		{"1.5M", 0, true},
		{"", 0, true},
		{"M", 0, true},
		{"-1M", 0, true},
	} {
		got, err := ParseRate(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil && FormatRate(got) != strings.ToUpper(tt.in) && tt.in != "8000" {
			t.Errorf("FormatRate(%d) = %q, want %q", got, FormatRate(got), tt.in)
		}
	}
}

func TestParseBurst(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"32K", 32 << 10, false},
		{"1M", 1 << 20, false},
		{"3000", 3000, false},
		{"1K", 0, true},
		{"2G", 0, true},
		{"x", 0, true},
	} {
		got, err := ParseBurst(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseBurst(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	if got := (Limit{Rate: 1_000_000}).String(); got != "1M burst 32K" {
		t.Errorf("Limit.String() = %q, want the default burst", got)
	}
	if got := (Limit{Rate: 100_000_000}).String(); got != "100M burst 250000" {
		t.Errorf("Limit.String() = %q, want 20 ms at the rate", got)
	}
}

func TestParseAddrs(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{"192.168.122.10", "192.168.122.10", ""},
		{"192.168.122.10, fd00::10 192.168.122.10", "192.168.122.10 fd00::10", ""},
		{"::ffff:10.0.0.1", "10.0.0.1", ""},
		{"224.0.0.1", "", "224.0.0.1 is not an address a guest sends from"},
		{"0.0.0.0", "", "0.0.0.0 is not an address a guest sends from"},
		{"192.168.122.0/24", "", `"192.168.122.0/24" is not an IPv4 or IPv6 address`},
		{"fe80::1%eth0", "", `"fe80::1%eth0" is not an IPv4 or IPv6 address`},
	} {
		got, err := ParseAddrs(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseAddrs(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseAddrs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	var many []string
	for i := range MaxAddrs + 1 {
		many = append(many, "10.0.0."+strconv.Itoa(i+1))
	}
	if _, err := ParseAddrs(strings.Join(many, " ")); err == nil || err.Error() != "more than 16 addresses" {
		t.Errorf("ParseAddrs(17 addresses) error = %v, want more than 16", err)
	}
}

// TestCheckGuard: the limits and guards every kind refuses when a part
// is missing, and Open vSwitch's refusals.
func TestCheckGuard(t *testing.T) {
	addrs, _ := ParseAddrs("192.168.122.10")
	ovs := &OVSBridge{name: "ovsbr0"}
	for _, tt := range []struct {
		name string
		b    Bridge
		s    PortSettings
		want Setting
	}{
		{"burst alone", &Linux{name: "br0"}, PortSettings{Inbound: Limit{Burst: 4096}}, SettingInboundBurst},
		{"outbound burst alone", &Linux{name: "br0"}, PortSettings{Outbound: Limit{Burst: 4096}}, SettingOutboundBurst},
		{"no guest MAC", &Linux{name: "br0"}, PortSettings{DenySpoofing: true}, SettingSpoofing},
		{"addresses alone", &Linux{name: "br0"}, PortSettings{Addrs: addrs}, SettingAddrs},
		{"spoofing on OVS", ovs, PortSettings{DenySpoofing: true, GuestMAC: "52:54:00:12:34:56"}, SettingSpoofing},
		{"rate on OVS", ovs, PortSettings{Inbound: Limit{Rate: 1e6}}, SettingInboundRate},
	} {
		err := tt.b.Check(tt.s)
		se, ok := err.(*SettingError)
		if !ok || se.Setting != tt.want {
			t.Errorf("%s: Check = %v, want a SettingError about %s", tt.name, err, settingNames[tt.want])
		}
	}
	ok := PortSettings{DenySpoofing: true, GuestMAC: "52:54:00:12:34:56", Addrs: addrs, Inbound: Limit{Rate: 1e6, Burst: 4096}}
	if err := (&Linux{name: "br0"}).Check(ok); err != nil {
		t.Errorf("Check(%+v) = %v, want nil", ok, err)
	}
}
