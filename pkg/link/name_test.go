package link

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name   string
		reason string // "" if valid
	}{
		{"tap0", ""},
		{"vnet12", ""},
		{"rt-kvm-vm0", ""},
		{"a", ""},
		{strings.Repeat("x", 15), ""},
		{"tap_0.1-x@y", ""},
		{"", "empty"},
		{strings.Repeat("x", 16), "16 bytes, longer than 15"},
		{".", "reserved"},
		{"..", "reserved"},
		{"a/b", `contains '/'`},
		{"eth0:1", `contains ':'`},
		{"ta p", "contains whitespace"},
		{"tap\t0", "contains whitespace"},
		{"tap\n", "contains whitespace"},
		{"tap\x00", "contains a control character"},
		{"tap\x1b[0m", "contains a control character"},
		{"tap\x7f", "contains a control character"},
		{"tap\u0085", "contains whitespace"},
		{"tap\xff", "not valid UTF-8"},
		{"tap\u00a0x", "contains whitespace"},
		{"täp", `contains 'ä' (not printable ASCII)`},
		{"tap\u200b", `contains '\u200b' (not printable ASCII)`},
		{"a,script=x", `contains ',' (QEMU's option syntax)`},
		{"a=b", `contains '=' (QEMU's option syntax)`},
		{"--help", "starts with '-' (reads as an option)"},
		{"-v", "starts with '-' (reads as an option)"},
		{"tap-", ""},
		{"tap%d", "contains '%' (a name template, not a name)"},
		{"%s%n", "contains '%' (a name template, not a name)"},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if tt.reason == "" {
			if err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", tt.name, err)
			}
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("ValidateName(%q) = %v, want a *NameError", tt.name, err)
			continue
		}
		if ne.Reason != tt.reason {
			t.Errorf("ValidateName(%q) reason = %q, want %q", tt.name, ne.Reason, tt.reason)
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("ValidateName(%q) error %q is not one line", tt.name, err)
		}
	}
}
