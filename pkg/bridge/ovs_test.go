package bridge

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAddPortArgs(t *testing.T) {
	tests := []struct {
		name string
		p    OVSPort
		move bool
		want string
	}{
		{
			name: "plain port clears what an earlier run set",
			p:    OVSPort{Bridge: "br0", Name: "tap0"},
			want: "-- --may-exist add-port br0 tap0 -- set Port tap0 tag=[] trunks=[] vlan_mode=[] -- set Interface tap0 mtu_request=[]",
		},
		{
			name: "access port with mtu and external ids in key order",
			p: OVSPort{Bridge: "br0", Name: "tap0", Tag: 10, MTU: 9000,
				ExternalIDs: map[string]string{"vm-id": "rt 1", "attached-mac": "52:54:00:12:34:56"}},
			want: `-- --may-exist add-port br0 tap0 -- set Port tap0 tag=10 trunks=[] vlan_mode=[] -- set Interface tap0 mtu_request=9000 external-ids:attached-mac="52:54:00:12:34:56" external-ids:vm-id="rt 1"`,
		},
		{
			name: "trunk with native vlan, moved from another bridge",
			p:    OVSPort{Bridge: "br1", Name: "tap0", Tag: 5, Trunks: []int{10, 20}, VLANMode: VLANNativeUntagged},
			move: true,
			want: "-- --if-exists del-port tap0 -- --may-exist add-port br1 tap0 -- set Port tap0 tag=5 trunks=[10,20] vlan_mode=native-untagged -- set Interface tap0 mtu_request=[]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.validate(); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(addPortArgs(tt.p, tt.move), " ")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOVSPortValidate(t *testing.T) {
	tests := []struct {
		p       OVSPort
		wantErr string
	}{
		{OVSPort{Tag: 4095}, "VLAN tag 4095 is not from 1 to 4094"},
		{OVSPort{Tag: -1}, "VLAN tag -1 is not from 1 to 4094"},
		{OVSPort{Trunks: []int{1, 4095}}, "trunk VLAN 4095 is not from 1 to 4094"},
		{OVSPort{Trunks: []int{0}}, "trunk VLAN 0 is not from 1 to 4094"},
		{OVSPort{VLANMode: "bogus"}, `unknown vlan_mode "bogus"`},
		{OVSPort{ExternalIDs: map[string]string{"a=b": "c"}}, "characters ovs-vsctl would misread"},
		{OVSPort{ExternalIDs: map[string]string{"vm": `x"y`}}, "characters ovs-vsctl would misread"},
		{OVSPort{Tag: 4094, Trunks: []int{1, 4094}, VLANMode: VLANTrunk, ExternalIDs: map[string]string{"vm-id": "a b"}}, ""},
	}
	for _, tt := range tests {
		err := tt.p.validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tt.wantErr == "" && got != "" || !strings.Contains(got, tt.wantErr) {
			t.Errorf("validate(%+v) = %q, want %q", tt.p, got, tt.wantErr)
		}
	}
}

func TestParsePort(t *testing.T) {
	keys := []string{"vm-name", "attached-mac"}
	tests := []struct {
		name    string
		out     string
		want    *OVSPort
		wantErr bool
	}{
		{name: "everything empty", out: "[]\n[]\n[]\n[]\n\n\n", want: &OVSPort{}},
		{
			name: "set values; a set of one prints as its atom; strings bare and quoted",
			out:  "10\n[30, 20]\naccess\n1400\n\"web \\\"1\\\"\"\n\"52:54:00:12:34:56\"\n",
			want: &OVSPort{Tag: 10, Trunks: []int{20, 30}, VLANMode: VLANAccess, MTU: 1400,
				ExternalIDs: map[string]string{"vm-name": `web "1"`, "attached-mac": "52:54:00:12:34:56"}},
		},
		{name: "trunk of one", out: "[]\n20\ntrunk\n[]\nweb\n\n", want: &OVSPort{Trunks: []int{20}, VLANMode: VLANTrunk,
			ExternalIDs: map[string]string{"vm-name": "web"}}},
		{name: "a line missing", out: "10\n[]\n[]\n[]\n\n", wantErr: true},
		{name: "not a number", out: "ten\n[]\n[]\n[]\n\n\n", wantErr: true},
		{name: "a map where a string goes", out: "[]\n[]\n{a=b}\n[]\n\n\n", wantErr: true},
		{name: "a bad quote", out: "[]\n[]\n[]\n[]\n\"web\n\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePort(tt.out, keys)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("port (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOVSMissingVsctl(t *testing.T) {
	o := &OVS{Env: []string{"PATH=" + t.TempDir()}}
	_, err := o.IsOVSBridge("br0")
	if !errors.Is(err, ErrOVSUnavailable) {
		t.Fatalf("err = %v, want ErrOVSUnavailable", err)
	}
	want := "ask Open vSwitch about bridge br0: Open vSwitch unavailable: ovs-vsctl not found (Debian package openvswitch-switch)"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
}

func TestOVSTimeoutSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{{0, 5}, {time.Millisecond, 1}, {1500 * time.Millisecond, 2}, {10 * time.Second, 10}} {
		if got := (&OVS{Timeout: tt.d}).timeoutSeconds(); got != tt.want {
			t.Errorf("timeoutSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// unreachableDB is a socket path nothing listens on.
func unreachableDB(t *testing.T) string {
	return "unix:" + filepath.Join(t.TempDir(), "db.sock")
}

func TestChassisOverhead(t *testing.T) {
	for _, tc := range []struct {
		encaps []string
		ips    []string
		want   int
	}{
		{nil, []string{"10.0.0.1"}, 58},
		{[]string{"geneve"}, []string{"10.0.0.1"}, 58},
		{[]string{"vxlan"}, []string{"10.0.0.1"}, 50},
		{[]string{"vxlan", "geneve"}, []string{"10.0.0.1"}, 58},
		{[]string{"geneve"}, []string{"fd00::1"}, 78},
		{[]string{"vxlan"}, []string{"fd00::1"}, 70},
		{[]string{"stt"}, nil, -1},
	} {
		c := Chassis{Encaps: tc.encaps}
		for _, s := range tc.ips {
			c.EncapIPs = append(c.EncapIPs, net.ParseIP(s))
		}
		got, err := c.Overhead()
		if tc.want < 0 {
			if err == nil {
				t.Errorf("Overhead(%v) = %d, want an error", tc.encaps, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Overhead(%v, %v) = %d, %v; want %d", tc.encaps, tc.ips, got, err, tc.want)
		}
	}
}
