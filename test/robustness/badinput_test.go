package robustness

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// commands are the helpers every bad input is tried on; qemu-launch, whose
// command line differs, has its own table below.
var commands = []string{"qemu-ifup", "qemu-ifdown"}

// Bad command lines: exit 2, the problem on the first line, the usage on
// the second, and nothing touched.
func TestBadArguments(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	ns.AddTap(t, "tap0")
	e := env(t, "QEMU_BRIDGE=br0")
	if r := run(t, ns, e, "qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup tap0: %d %s", r.code, r.stderr)
	}
	before := snapAll(t, ns, "tap0", "br0")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no argument", nil, "missing IFNAME"},
		{"empty name", []string{""}, "empty"},
		{"overlong name", []string{"tap0123456789abc"}, "16 bytes, longer than 15"},
		{"overlong name naming tap0", []string{"tap0" + strings.Repeat("x", 60)}, "longer than 15"},
		{"non-UTF-8", []string{"tap\xff0"}, "not valid UTF-8"},
		{"control character", []string{"tap\x01"}, "control character"},
		{"DEL", []string{"tap\x7f"}, "control character"},
		{"newline", []string{"tap0\n"}, "whitespace"},
		{"escape sequence", []string{"\x1b[31mtap0"}, "control character"},
		{"space", []string{"tap 0"}, "whitespace"},
		{"slash", []string{"../tap0"}, `contains '/'`},
		{"colon", []string{"tap0:1"}, `contains ':'`},
		{"dot dot", []string{".."}, "reserved"},
		{"two names", []string{"tap0", "tap1"}, "expected one IFNAME, got 2"},
		{"unknown option", []string{"--force", "tap0"}, `unknown option "--force"`},
	}
	for _, tt := range tests {
		for _, prog := range commands {
			t.Run(tt.name+"/"+prog, func(t *testing.T) {
				r := run(t, ns, e, prog, tt.args...)
				if r.code != 2 {
					t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
				}
				lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
				if len(lines) != 2 || !strings.HasPrefix(lines[0], prog+": ") ||
					!strings.Contains(lines[0], tt.want) || !strings.HasPrefix(lines[1], "usage: "+prog) {
					t.Errorf("stderr %q: want %q... containing %q, then the usage", r.stderr, prog+": ", tt.want)
				}
				// The name is quoted: no raw control byte or
				// invalid UTF-8 reaches the terminal or the log.
				if !printableLine(lines[0]) {
					t.Errorf("raw bytes of the name in %q", lines[0])
				}
			})
		}
	}
	checkUnchanged(t, ns, before)
}

// Malformed configuration: qemu-ifup exits 1 with one line naming the
// file and, for a syntax or value error, the line, touching nothing;
// qemu-ifdown says the same as a warning and still detaches the tap, as
// it needs nothing from the config to do so.
func TestBadConfig(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	ns.AddTap(t, "tap0")
	if r := run(t, ns, env(t, "QEMU_BRIDGE=br0"), "qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup tap0: %d %s", r.code, r.stderr)
	}
	before := snapAll(t, ns, "tap0", "br0")
	lineRE := regexp.MustCompile(`:\d+: |: line \d+: `)
	tests := []struct {
		name, conf string
		want       string
		noLine     bool // the error is about the file, not a line of it
	}{
		{"key before section", "Bridge=br0\n", "Bridge= before any [section]", false},
		{"unterminated section", "[Defaults\nBridge=br0\n", "section header without ']'", false},
		{"unknown section", "[Default]\nBridge=br0\n", "unknown section [Default]", false},
		{"unknown key", "[Defaults]\nBrdige=br0\n", `unknown key "Brdige"`, false},
		{"not KEY=VALUE", "[Defaults]\nbridge br0\n", "expected KEY=VALUE", false},
		{"MTU not a number", "[Defaults]\nMTU=jumbo\n", `MTU: "jumbo"`, false},
		{"MTU too large", "[Defaults]\nMTU=70000\n", `MTU: "70000"`, false},
		{"MTU too small", "[Defaults]\nMTU=67\n", `MTU: "67"`, false},
		{"bridge with slash", "[Defaults]\nBridge=br/0\n", `Bridge: invalid interface name "br/0"`, false},
		{"bridge overlong", "[Defaults]\nBridge=" + strings.Repeat("b", 16) + "\n", "longer than 15", false},
		{"bridge not UTF-8", "[Defaults]\nBridge=br\xff\n", "not valid UTF-8", false},
		{"bridge control character", "[Defaults]\nBridge=br\x01\n", "control character", false},
		{"interface without Name", "[Interface]\nBridge=br0\n", "[Interface] without Name=", false},
		{"bad glob", "[Interface]\nName=tap[\nBridge=br0\n", `bad pattern "tap["`, false},
		{"bad boolean", "[Defaults]\nPromiscuous=maybe\n", `"maybe" is not a boolean`, false},
		{"bad MAC policy", "[Defaults]\nMAC=random\n", `"random" is neither high nor keep`, false},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00\x00", "", false},
		{"too large", "[Defaults]\n" + strings.Repeat("# padding\n", 7000), "larger than", true},
		{"a directory", "", "not a regular file but a directory", true},
		{"a FIFO", "", "not a regular file but a FIFO", true},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "qemu-ifup.conf")
		switch tt.name {
		case "a directory":
			must(t, os.Mkdir(path, 0o755))
		case "a FIFO":
			must(t, unix.Mkfifo(path, 0o644))
		default:
			must(t, os.WriteFile(path, []byte(tt.conf), 0o644))
		}
		checkNames := func(t *testing.T, stderr string) {
			t.Helper()
			if !strings.Contains(stderr, path) {
				t.Errorf("stderr %q does not name %s", stderr, path)
			}
			if !tt.noLine && !lineRE.MatchString(stderr) {
				t.Errorf("stderr %q names no line", stderr)
			}
		}
		t.Run(tt.name+"/qemu-ifup", func(t *testing.T) {
			// QEMU_IFUP_CONFIG comes after env's default and wins.
			r := run(t, ns, env(t, "QEMU_IFUP_CONFIG="+path), "qemu-ifup", "tap0")
			checkFailure(t, "qemu-ifup", r, tt.want)
			checkNames(t, r.stderr)
			checkUnchanged(t, ns, before)
		})
		t.Run(tt.name+"/qemu-ifdown", func(t *testing.T) {
			r := run(t, ns, env(t, "QEMU_IFUP_CONFIG="+path), "qemu-ifdown", "tap0")
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if r.code != 0 || !strings.HasPrefix(lines[0], "qemu-ifdown: tap0: warning: ") ||
				!strings.Contains(lines[0], tt.want) || !strings.HasSuffix(lines[0], "; detaching anyway") {
				t.Errorf("qemu-ifdown: exit %d, stderr %q; want 0 and a warning containing %q", r.code, r.stderr, tt.want)
			}
			checkNames(t, lines[0])
			if m := ns.MasterName(t, ns.Link(t, "tap0")); m != "" {
				t.Errorf("tap0 still a port of %s", m)
			}
			// Back on br0 for the next case.
			if r := run(t, ns, env(t, "QEMU_BRIDGE=br0"), "qemu-ifup", "tap0"); r.code != 0 {
				t.Fatalf("qemu-ifup tap0: %d %s", r.code, r.stderr)
			}
		})
	}
}

// Bad settings from the environment and from a record left under the run
// directory: exit 1, one line, nothing touched.
func TestBadEnvironmentAndRecord(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	ns.AddTap(t, "tap0")
	before := snapAll(t, ns, "tap0", "br0")
	rundir := t.TempDir()
	record := ns.PlantRecord(t, rundir, "tap0", "[Interface]\nMTU=1\n")
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"QEMU_BRIDGE with slash", env(t, "QEMU_BRIDGE=br/0"), `QEMU_BRIDGE: invalid interface name "br/0"`},
		{"QEMU_BRIDGE with newline", env(t, "QEMU_BRIDGE=br0\nx"), "QEMU_BRIDGE: invalid interface name"},
		{"bad record", append(env(t, "QEMU_BRIDGE=br0"), "QEMU_TAP_HELPERS_RUNDIR="+rundir), record + ":2: MTU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, ns, tt.env, "qemu-ifup", "tap0")
			checkFailure(t, "qemu-ifup", r, tt.want)
		})
	}
	checkUnchanged(t, ns, before)
	if _, err := os.Stat(record); err != nil {
		t.Errorf("the bad record was removed: %v", err)
	}
}

// qemu-launch with bad names on its command line (exit 2), in QEMU's
// arguments or in a VM file (exit 1): one line naming the problem, QEMU
// never started, no record written, nothing touched.
func TestBadLaunchInput(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	ns.AddTap(t, "tap0")
	before := snapAll(t, ns, "tap0", "br0")
	qemu, marker := fakeQEMU(t)
	vmfile := func(body string) string {
		p := filepath.Join(nstest.TrustedDir(t), "vm.conf")
		must(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	lineRE := regexp.MustCompile(`vm\.conf(:\d+: |: line \d+: )`)
	tests := []struct {
		name   string
		args   []string
		code   int
		want   string
		inFile bool // the error names a line of the VM file
	}{
		{"empty bridge", []string{"--bridge=", qemu}, 2, `invalid interface name "": empty`, false},
		{"overlong bridge", []string{"--bridge", strings.Repeat("b", 16), qemu}, 2, "16 bytes, longer than 15", false},
		{"bridge not UTF-8", []string{"--bridge", "br\xff", qemu}, 2, "not valid UTF-8", false},
		{"bridge with control character", []string{"--bridge", "br\x1b", qemu}, 2, "control character", false},
		{"netdev bridge with slash", []string{"--bridge", "vm0=br/0", qemu}, 2, `contains '/'`, false},
		{"no QEMU", nil, 2, "no QEMU binary given", false},
		{"ifname empty", []string{qemu, "-netdev", "tap,id=vm0,ifname="}, 1, `invalid interface name "": empty`, false},
		{"ifname overlong", []string{qemu, "-netdev", "tap,id=vm0,ifname=" + strings.Repeat("t", 16)}, 1, "longer than 15", false},
		{"ifname not UTF-8", []string{qemu, "-netdev", "tap,id=vm0,ifname=t\xff"}, 1, "not valid UTF-8", false},
		{"ifname with escape", []string{qemu, "-netdev", "tap,id=vm0,ifname=t\x1b[0m"}, 1, "control character", false},
		{"VM file bridge", []string{"--config", vmfile("[VM]\nQEMU=" + qemu + "\n[NIC]\nID=vm0\nBridge=br/0\n")}, 1, `Bridge: invalid interface name "br/0"`, true},
		{"VM file ifname", []string{"--config", vmfile("[VM]\nQEMU=" + qemu + "\n[NIC]\nID=vm0\nIfname=tap\x01\n")}, 1, "Ifname: invalid interface name", true},
		{"VM file key with escape", []string{"--config", vmfile("[VM]\nQEMU=" + qemu + "\n\x1b[2J=1\n")}, 1, "bad key", true},
		{"VM file key before section", []string{"--config", vmfile("Name=x\n")}, 1, "Name= before any [section]", true},
		{"VM file binary", []string{"--config", vmfile("\x7fELF\x02\x01")}, 1, "expected KEY=VALUE", true},
		{"VM file bad number", []string{"--config", vmfile("[VM]\nQEMU=" + qemu + "\nVCPUs=lots\n")}, 1, `VCPUs: "lots"`, true},
		{"VM file missing", []string{"--config", filepath.Join(nstest.TrustedDir(t), "none.conf")}, 1, "none.conf", false},
	}
	rundir := t.TempDir()
	e := append(env(t), "QEMU_TAP_HELPERS_RUNDIR="+rundir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, ns, e, "qemu-launch", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			first := lines[0]
			if !strings.HasPrefix(first, "qemu-launch: ") || !strings.Contains(first, tt.want) {
				t.Errorf("first line %q: want %q... containing %q", first, "qemu-launch: ", tt.want)
			}
			if tt.code == 1 && len(lines) != 1 {
				t.Errorf("stderr %q: want one line", r.stderr)
			}
			if tt.code == 2 && !strings.HasPrefix(lines[len(lines)-1], "       qemu-launch") && !strings.HasPrefix(lines[len(lines)-1], "usage: ") {
				t.Errorf("stderr %q: want the usage after the message", r.stderr)
			}
			if !printableLine(first) {
				t.Errorf("raw control characters or invalid UTF-8 in %q", first)
			}
			if tt.inFile && !lineRE.MatchString(first) {
				t.Errorf("%q names no line of the VM file", first)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("QEMU was started")
	}
	if ents, _ := filepath.Glob(filepath.Join(rundir, "*", "*")); len(ents) != 0 {
		t.Errorf("records left in the run directory: %v", ents)
	}
	checkUnchanged(t, ns, before)
}

func printableLine(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// fakeQEMU writes a QEMU that only leaves a marker file, to tell whether
// the launcher started it, in a directory only root may write: root's
// launcher runs nothing else.
func fakeQEMU(t *testing.T) (qemu, marker string) {
	t.Helper()
	dir := nstest.TrustedDir(t)
	marker = filepath.Join(dir, "qemu-ran")
	qemu = filepath.Join(dir, "qemu")
	must(t, os.WriteFile(qemu, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755))
	return qemu, marker
}
