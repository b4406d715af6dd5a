package cpuset

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		str  string
	}{
		{"0", []int{0}, "0"},
		{"2,3", []int{2, 3}, "2-3"},
		{"0-3,8", []int{0, 1, 2, 3, 8}, "0-3,8"},
		{"8,0-3", []int{0, 1, 2, 3, 8}, "0-3,8"},
		{"0-7:2", []int{0, 2, 4, 6}, "0,2,4,6"},
		{" 1 , 1", []int{1}, "1"},
		{"63-65", []int{63, 64, 65}, "63-65"},
	}
	for _, tt := range tests {
		s, err := ParseList(tt.in)
		if err != nil {
			t.Errorf("ParseList(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, s.CPUs()); diff != "" {
			t.Errorf("ParseList(%q) (-want +got):\n%s", tt.in, diff)
		}
		if got := s.String(); got != tt.str {
			t.Errorf("ParseList(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
	}
}

func TestParseListErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty CPU list"},
		{"a", `"a" is not a CPU number`},
		{"-1", `"" is not a CPU number`},
		{"3-1", "runs backwards"},
		{"1,,2", `"" is not a CPU number`},
		{"0-3:0", "bad stride"},
		{"2:2", "stride without a range"},
		{"+1", `"+1" is not a CPU number`},
		{"5000", "past the limit"},
	}
	for _, tt := range tests {
		_, err := ParseList(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseList(%q) = %v, want error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestParseMask(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		mask string
	}{
		{"0x1", []int{0}, "0x1"},
		{"0x4", []int{2}, "0x4"},
		{"0x8", []int{3}, "0x8"},
		{"c", []int{2, 3}, "0xc"},
		{"0XfF", []int{0, 1, 2, 3, 4, 5, 6, 7}, "0xff"},
		{"0x1,00000000", []int{32}, "0x100000000"},
		{"0x10000000000000001", []int{0, 64}, "0x10000000000000001"},
	}
	for _, tt := range tests {
		s, err := ParseMask(tt.in)
		if err != nil {
			t.Errorf("ParseMask(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, s.CPUs()); diff != "" {
			t.Errorf("ParseMask(%q) (-want +got):\n%s", tt.in, diff)
		}
		if got := s.Mask(); got != tt.mask {
			t.Errorf("ParseMask(%q).Mask() = %q, want %q", tt.in, got, tt.mask)
		}
	}
	for _, bad := range []string{"", "0x", "0x0", "0xg", "0x-1", strings.Repeat("f", 300)} {
		if _, err := ParseMask(bad); err == nil {
			t.Errorf("ParseMask(%q) succeeded", bad)
		}
	}
}

func TestParseEitherNotation(t *testing.T) {
	a, err := Parse("0x6")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("1-2")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equal(b) {
		t.Errorf("Parse(0x6) = %v, Parse(1-2) = %v", a, b)
	}
}

func TestMinusAndUnix(t *testing.T) {
	s := Of(0, 1, 5, 70)
	if got := s.Minus(Of(1, 70)).String(); got != "0,5" {
		t.Errorf("Minus = %q, want 0,5", got)
	}
	u := s.Unix()
	if got := FromUnix(&u); !got.Equal(s) {
		t.Errorf("FromUnix(Unix(%v)) = %v", s, got)
	}
	if (Set{}).Has(0) || !(Set{}).Empty() || (Set{}).Mask() != "0x0" {
		t.Error("zero Set is not empty")
	}
}

func TestOnline(t *testing.T) {
	s, err := Online()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Has(0) {
		t.Errorf("online CPUs %v lack CPU 0", s)
	}
}
