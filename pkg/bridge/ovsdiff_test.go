package bridge

import (
	"errors"
	"testing"
)

// TestOVSPortWords checks how an OVS port is asked for and described: the
// vlan_mode chosen from VLAN= and Trunks=, the attach target, and the
// difference --check shows.
func TestOVSPortWords(t *testing.T) {
	br := &OVSBridge{name: "ovsbr0"}
	trunks, err := ParseVLANs("20 30")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		p                PortSettings
		have             *OVSPort
		attach, from, to string
		same             bool
	}{
		{name: "untagged, new", p: PortSettings{}, attach: "Open vSwitch bridge ovsbr0"},
		{name: "access port, new", p: PortSettings{VLAN: 10}, attach: "Open vSwitch bridge ovsbr0 with tag=10"},
		{name: "native-untagged trunk", p: PortSettings{VLAN: 5, Trunks: trunks}, attach: "Open vSwitch bridge ovsbr0 with tag=5 trunks=20,30",
			have: &OVSPort{Tag: 5, VLANMode: VLANAccess, MTU: 1500},
			from: "trunks=none vlan_mode=access", to: "trunks=20,30 vlan_mode=native-untagged"},
		{name: "the same port", p: PortSettings{VLAN: 10, VMName: "web"}, attach: "Open vSwitch bridge ovsbr0 with tag=10",
			have: &OVSPort{Tag: 10, VLANMode: VLANAccess, MTU: 1500,
				ExternalIDs: map[string]string{"vm-name": "web", "other": "kept"}}, same: true},
		{name: "a new guest MAC", p: PortSettings{GuestMAC: "52:54:00:12:34:56"}, attach: "Open vSwitch bridge ovsbr0",
			have: &OVSPort{MTU: 1500},
			from: "external-ids:attached-mac=none", to: "external-ids:attached-mac=52:54:00:12:34:56"},
		{name: "an OVN logical port, new", p: PortSettings{LogicalPort: "vm-a", VMUUID: "8f3c4a55-1b2c-4d5e-8f90-123456789abc"},
			attach: "Open vSwitch bridge ovsbr0 as OVN logical port vm-a"},
		{name: "a port becomes an OVN logical port", p: PortSettings{LogicalPort: "vm-a", VMName: "web"},
			attach: "Open vSwitch bridge ovsbr0 as OVN logical port vm-a",
			have:   &OVSPort{MTU: 1500, ExternalIDs: map[string]string{"vm-name": "web"}},
			from:   "external-ids:iface-id=none external-ids:iface-status=none",
			to:     "external-ids:iface-id=vm-a external-ids:iface-status=active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := br.port("tap0", 1500, tt.p)
			if got := attachTo(br, want); got != tt.attach {
				t.Errorf("attachTo = %q, want %q", got, tt.attach)
			}
			if tt.have == nil {
				return
			}
			if got := sameOVS(tt.have, want); got != tt.same {
				t.Errorf("sameOVS = %v, want %v", got, tt.same)
			}
			if tt.same {
				return
			}
			from, to := describeOVS(tt.have, want)
			if from != tt.from || to != tt.to {
				t.Errorf("describeOVS = %q -> %q, want %q -> %q", from, to, tt.from, tt.to)
			}
		})
	}
}

// TestCheck: each kind refuses the settings it cannot carry, naming the
// setting and both kinds.
func TestCheck(t *testing.T) {
	trunks, err := ParseVLANs("10 20")
	if err != nil {
		t.Fatal(err)
	}
	var isolated PortFlags
	isolated.Set(FlagIsolated, true)
	lin, ovs := &Linux{name: "virbr0"}, &OVSBridge{name: "ovsbr0"}
	tests := []struct {
		b    Bridge
		s    PortSettings
		want string
	}{
		{lin, PortSettings{}, ""},
		{lin, PortSettings{Flags: isolated, GuestMAC: "52:54:00:12:34:56"}, ""},
		{lin, PortSettings{VLAN: 10}, "access VLAN 10 needs an Open vSwitch bridge and virbr0 is a Linux bridge: VLANs on Linux bridges (vlan_filtering) are not implemented"},
		{lin, PortSettings{Trunks: trunks}, "trunk VLANs 10,20 needs an Open vSwitch bridge and virbr0 is a Linux bridge: VLANs on Linux bridges (vlan_filtering) are not implemented"},
		{ovs, PortSettings{VLAN: 10, Trunks: trunks, VMName: "web"}, ""},
		{ovs, PortSettings{Flags: isolated}, "port flag isolated applies to ports of Linux bridges; ovsbr0 is an Open vSwitch bridge"},
		{ovs, PortSettings{LogicalPort: "vm-a"}, ""},
		{lin, PortSettings{LogicalPort: "vm-a"}, "OVN logical port vm-a needs OVN's integration bridge, an Open vSwitch bridge (br-int), and virbr0 is a Linux bridge"},
	}
	for _, tt := range tests {
		err := tt.b.Check(tt.s)
		var se *SettingError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Check = %v, want nil", tt.b, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.As(err, &se)):
			t.Errorf("%s: Check = %v, want a SettingError %q", tt.b, err, tt.want)
		}
	}
}
