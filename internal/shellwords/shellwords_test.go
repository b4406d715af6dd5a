package shellwords

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc ", []string{"a", "b", "c"}},
		{`'a b'c "d\"e" f\ g ''`, []string{"a bc", `d"e`, "f g", ""}},
		{`"$HOME" '\n'`, []string{"$HOME", `\n`}},
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if err != nil {
			t.Errorf("Split(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Split(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, bad := range []string{`'a`, `"a`, `a\`} {
		if _, err := Split(bad); err == nil {
			t.Errorf("Split(%q) succeeded", bad)
		}
	}
}

func TestJoin(t *testing.T) {
	got := Join([]string{"qemu", "-append", "a b", "it's", "", "x=1,y", "$HOME", "tap,id=vm0"})
	want := `qemu -append 'a b' 'it'\''s' '' x=1,y '$HOME' tap,id=vm0`
	if got != want {
		t.Errorf("Join = %s, want %s", got, want)
	}
}
