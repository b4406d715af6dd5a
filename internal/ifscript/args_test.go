package ifscript

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/journal"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/proc"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		cmd   Command
		args  []string
		want  Options
		usage string // non-empty: a usage error containing this
	}{
		{"ifname only", Up(), []string{"tap0"}, Options{Ifname: "tap0"}, ""},
		{"options before", Up(), []string{"--quiet", "--dry-run", "tap0"}, Options{Ifname: "tap0", Quiet: true, DryRun: true}, ""},
		{"options after", Up(), []string{"tap0", "--check"}, Options{Ifname: "tap0", Check: true}, ""},
		{"single dash", Up(), []string{"-q", "tap0"}, Options{Ifname: "tap0", Quiet: true}, ""},
		{"double dash ends options", Up(), []string{"--", "tap0"}, Options{Ifname: "tap0"}, ""},
		{"name like an option", Up(), []string{"--", "-tap"}, Options{}, "starts with '-' (reads as an option)"},
		{"name with a comma", Up(), []string{"a,script=x"}, Options{}, "contains ',' (QEMU's option syntax)"},
		{"help wins", Up(), []string{"--help", "a", "b"}, Options{Help: true}, ""},
		{"version", Down(), []string{"--version"}, Options{Version: true}, ""},
		{"no argument", Up(), nil, Options{}, "missing IFNAME"},
		{"two arguments", Up(), []string{"tap0", "tap1"}, Options{}, "expected one IFNAME, got 2 arguments"},
		{"empty name", Up(), []string{""}, Options{}, `invalid interface name "": empty`},
		{"long name", Down(), []string{"tap-name-too-long"}, Options{}, "17 bytes, longer than 15"},
		{"control character", Up(), []string{"tap\x1b0"}, Options{}, "control character"},
		{"non-UTF-8", Up(), []string{"tap\xff"}, Options{}, "not valid UTF-8"},
		{"unknown option", Up(), []string{"--force", "tap0"}, Options{}, `unknown option "--force"`},
		{"ifdown has no --check", Down(), []string{"--check", "tap0"}, Options{}, `unknown option "--check"`},
		{"dry-run and check", Up(), []string{"--dry-run", "--check", "tap0"}, Options{}, "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Parse(tt.args)
			if tt.usage != "" {
				if _, ok := err.(*UsageError); !ok || !strings.Contains(err.Error(), tt.usage) {
					t.Fatalf("Parse(%q) error = %v, want a usage error with %q", tt.args, err, tt.usage)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

// TestMainUsage checks what a user sees for a bad command line: exit
// status 2, the problem on one line, then a usage line, nothing on stdout.
func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b"}, {"a b"}, {"--nope", "tap0"}} {
		var out, errb bytes.Buffer
		code := Up().Main(args, &System{proc.Process{Stdout: &out, Stderr: &errb}})
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		if code != 2 || out.Len() != 0 || len(lines) != 2 ||
			!strings.HasPrefix(lines[0], "qemu-ifup: ") || !strings.HasPrefix(lines[1], "usage: qemu-ifup ") {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

func TestMainHelpVersion(t *testing.T) {
	for _, c := range []Command{Up(), Down()} {
		var out, errb bytes.Buffer
		if code := c.Main([]string{"--help"}, &System{proc.Process{Stdout: &out, Stderr: &errb}}); code != 0 ||
			!strings.HasPrefix(out.String(), "usage: "+c.Name) || errb.Len() != 0 {
			t.Errorf("%s --help = %d, %q, %q", c.Name, code, out.String(), errb.String())
		}
		// Each says how it finds the bridge; only ifup chooses one.
		if chooses := strings.Contains(out.String(), "else QEMU_BRIDGE"); chooses != c.CanCheck {
			t.Errorf("%s --help: says how the bridge is chosen: %v, want %v\n%s", c.Name, chooses, c.CanCheck, out.String())
		}
		out.Reset()
		if code := c.Main([]string{"--version"}, &System{proc.Process{Stdout: &out, Stderr: &errb}}); code != 0 ||
			out.String() != c.Name+" devel\n" {
			t.Errorf("%s --version = %d, %q", c.Name, code, out.String())
		}
	}
}

// TestLoggerJournal checks the journal fields and that a line is not
// logged twice when stderr already is the journal.
func TestLoggerJournal(t *testing.T) {
	type entry struct {
		Msg    string
		Pri    int
		Fields map[string]string
	}
	var got []entry
	var errb bytes.Buffer
	sys := &System{proc.Process{
		Stderr: &errb,
		Journal: func(msg string, pri int, f map[string]string) error {
			got = append(got, entry{msg, pri, f})
			return nil
		},
	}}
	log := sys.logger("qemu-ifup", "tap0", false)
	log.info("attach to virbr0", "virbr0")
	want := []entry{{"qemu-ifup: tap0: attach to virbr0", journal.PriInfo, map[string]string{
		"SYSLOG_IDENTIFIER": "qemu-ifup", "QEMU_TAP": "tap0", "QEMU_BRIDGE": "virbr0"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("journal entries (-want +got):\n%s", diff)
	}
	if errb.String() != "qemu-ifup: tap0: attach to virbr0\n" {
		t.Errorf("stderr = %q", errb.String())
	}
	errb.Reset()
	sys.StderrIsJournal = true
	log.info("up", "virbr0")
	if errb.Len() != 0 {
		t.Errorf("stderr is the journal, yet the line was written twice: %q", errb.String())
	}
	errb.Reset()
	sys.StderrIsJournal = false
	quiet := sys.logger("qemu-ifup", "tap0", true)
	quiet.info("up", "virbr0")
	quiet.send(journal.PriErr, "tap0: boom", "")
	if errb.String() != "qemu-ifup: tap0: boom\n" {
		t.Errorf("--quiet stderr = %q, want only the error", errb.String())
	}
}
