package unitfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Section
	}{
		{"empty", "", nil},
		{"comments only", "# a\n; b\n\n", nil},
		{
			"sections and entries",
			"# head\n[Defaults]\nBridge=virbr0\n\n[Interface]\n  Name = rt-* vm7-*\nMTU=9000\n[Interface]\nName=x\n",
			[]Section{
				{Name: "Defaults", Line: 2, Entries: []Entry{{Key: "Bridge", Value: "virbr0", Line: 3}}},
				{Name: "Interface", Line: 5, Entries: []Entry{
					{Key: "Name", Value: "rt-* vm7-*", Line: 6},
					{Key: "MTU", Value: "9000", Line: 7},
				}},
				{Name: "Interface", Line: 8, Entries: []Entry{{Key: "Name", Value: "x", Line: 9}}},
			},
		},
		{
			"continuation lines keep later line numbers right",
			"[VM]\nAppend=root=/dev/vda \\\n  console=ttyS0\nName=rt\n",
			[]Section{{Name: "VM", Line: 1, Entries: []Entry{
				{Key: "Append", Value: "root=/dev/vda  console=ttyS0", Line: 2},
				{Key: "Name", Value: "rt", Line: 4},
			}}},
		},
		{
			"continued comment",
			"[A]\n# x \\\nnot=a key\nB=1\n",
			[]Section{{Name: "A", Line: 1, Entries: []Entry{{Key: "B", Value: "1", Line: 4}}}},
		},
		{
			"CRLF and empty value",
			"[A]\r\nB=\r\nC=x=y\r\n",
			[]Section{{Name: "A", Line: 1, Entries: []Entry{{Key: "B", Value: "", Line: 2}, {Key: "C", Value: "x=y", Line: 3}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got) == 0 {
				got = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		line int
		msg  string
	}{
		{"Bridge=virbr0\n", 1, "before any [section]"},
		{"garbage\n[A]\n", 1, "expected KEY=VALUE"},
		{"[A]\njust words\n", 2, "expected KEY=VALUE"},
		{"[A]\n=value\n", 2, "empty key"},
		{"[A\nB=1\n", 1, "without ']'"},
		{"[A] x\n", 1, "text after section header"},
		{"[]\n", 1, "bad section name"},
		{"[A]\nB=" + strings.Repeat("x", 3000) + "\n", 2, "line too long"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%.30q) = %v, want an *Error", tt.in, err)
			continue
		}
		if e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("Parse(%.30q) = %v, want line %d and %q", tt.in, err, tt.line, tt.msg)
		}
	}
}

// FuzzParse checks that Parse never panics, that errors carry a line inside
// the input, and that entries it accepts come with their lines in order.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[Defaults]\nBridge=virbr0\n[Interface]\nName=rt-*\nMTU=9000\n"))
	f.Add([]byte("[VM]\nAppend=a \\\n b\n#c\\\nd\n"))
	f.Add([]byte("[A]\r\nB=\r\n;x\n"))
	f.Add([]byte("x\n[A"))
	f.Fuzz(func(t *testing.T, data []byte) {
		secs, err := Parse(data)
		lines := strings.Count(string(data), "\n") + 1
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if msg := err.Error(); !printable(msg) {
				t.Fatalf("error %q carries raw control characters or invalid UTF-8", msg)
			}
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("error line %d outside 1..%d", e.Line, lines)
			}
			return
		}
		last := 0
		for _, s := range secs {
			if s.Line <= last || s.Line > lines {
				t.Fatalf("section %q at line %d after line %d (of %d)", s.Name, s.Line, last, lines)
			}
			last = s.Line
			for _, e := range s.Entries {
				if e.Line <= last || e.Line > lines || e.Key == "" {
					t.Fatalf("entry %q at line %d after line %d (of %d)", e.Key, e.Line, last, lines)
				}
				last = e.Line
			}
		}
	})
}

func TestParseTooLarge(t *testing.T) {
	in := "[A]\n" + strings.Repeat(strings.Repeat(" ", 1000)+"\n", MaxSize/1000+1)
	if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse of %d bytes = %v, want a size error", len(in), err)
	}
}

// A CRLF file reads as its LF twin: a backslash before CRLF continues the
// value as it does before LF (go-systemd's lexer kept the '\r' and
// continued nothing).
func TestParseCRLF(t *testing.T) {
	for _, in := range []string{
		"[A]\nB=br0 \\\n  x\nC=1\n\n# c \\\nD=2\nE=3",
		"[A]\r\nB=br0 \\\r\n  x\r\nC=1\r\n\r\n# c \\\r\nD=2\r\nE=3\r\n",
	} {
		want := []Section{{Name: "A", Line: 1, Entries: []Entry{
			{Key: "B", Value: "br0  x", Line: 2},
			{Key: "C", Value: "1", Line: 4},
			{Key: "E", Value: "3", Line: 8},
		}}}
		got, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", in, diff)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, v := range []string{"1", "yes", "y", "true", "t", "on", "YES", "On"} {
		if b, err := ParseBool(v); !b || err != nil {
			t.Errorf("ParseBool(%q) = %v, %v; want true", v, b, err)
		}
	}
	for _, v := range []string{"0", "no", "n", "false", "f", "off", "No"} {
		if b, err := ParseBool(v); b || err != nil {
			t.Errorf("ParseBool(%q) = %v, %v; want false", v, b, err)
		}
	}
	for _, v := range []string{"", "2", "maybe", "enabled"} {
		if _, err := ParseBool(v); err == nil {
			t.Errorf("ParseBool(%q) succeeded", v)
		}
	}
}
