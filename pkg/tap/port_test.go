package tap

import (
	"net"
	"testing"
)

func TestHighMAC(t *testing.T) {
	tests := []struct{ in, want string }{
		{"52:54:00:12:34:56", "fe:54:00:12:34:56"},
		{"02:00:00:00:00:01", "fe:00:00:00:00:01"},
		{"fe:aa:bb:cc:dd:ee", "fe:aa:bb:cc:dd:ee"},
	}
	for _, tt := range tests {
		in, _ := net.ParseMAC(tt.in)
		got := highMAC(in)
		if got.String() != tt.want {
			t.Errorf("highMAC(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if in.String() != tt.in {
			t.Errorf("highMAC modified its argument: %s", in)
		}
	}
}

func TestParseMACPolicy(t *testing.T) {
	for s, want := range map[string]MACPolicy{"high": MACHigh, "keep": MACKeep} {
		got, err := ParseMACPolicy(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseMACPolicy(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "High", "random", "fe:00:00:00:00:01"} {
		if _, err := ParseMACPolicy(s); err == nil {
			t.Errorf("ParseMACPolicy(%q) succeeded, want an error", s)
		}
	}
}

func TestChangeString(t *testing.T) {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		c    Change
		want string
	}{
		{mtuChange(1500, 9000), "mtu 1500 -> 9000"},
		{macChange(mac("52:54:00:00:00:01"), mac("fe:54:00:00:00:01")), "mac 52:54:00:00:00:01 -> fe:54:00:00:00:01"},
		{promiscChange(true), "promisc on"},
		{upChange(), "up"},
		{promiscChange(false), "promisc off"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%v.String() = %q, want %q", tt.c.Op, got, tt.want)
		}
	}
}
