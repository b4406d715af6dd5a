package bridge

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVLANs(t *testing.T) {
	tests := []struct {
		in      string
		list    []int
		str     string
		wantErr string
	}{
		{in: "10", list: []int{10}, str: "10"},
		{in: "20 10,30", list: []int{10, 20, 30}, str: "10,20,30"},
		{in: "100-103, 5 6", list: []int{5, 6, 100, 101, 102, 103}, str: "5,6,100-103"},
		{in: "1 4094 63 64 65", list: []int{1, 63, 64, 65, 4094}, str: "1,63-65,4094"},
		{in: "", wantErr: "no VLAN given"},
		{in: " , ", wantErr: "no VLAN given"},
		{in: "0", wantErr: `"0" is not a VLAN ID from 1 to 4094`},
		{in: "4095", wantErr: `"4095" is not a VLAN ID from 1 to 4094`},
		{in: "ten", wantErr: `"ten" is not a VLAN ID from 1 to 4094`},
		{in: "20-10", wantErr: `VLAN range "20-10" runs backwards`},
		{in: "10-", wantErr: `"" is not a VLAN ID from 1 to 4094`},
	}
	for _, tt := range tests {
		v, err := ParseVLANs(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseVLANs(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVLANs(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.list, v.List()); diff != "" {
			t.Errorf("ParseVLANs(%q).List() (-want +got):\n%s", tt.in, diff)
		}
		if got := v.String(); got != tt.str {
			t.Errorf("ParseVLANs(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
		if again, err := ParseVLANs(v.String()); err != nil || again != v {
			t.Errorf("ParseVLANs(%q) does not read back its String %q: %v", tt.in, v.String(), err)
		}
	}
	var empty VLANSet
	if !empty.IsEmpty() || empty.List() != nil || empty.String() != "" {
		t.Errorf("empty set: %v %q", empty.List(), empty.String())
	}
}
