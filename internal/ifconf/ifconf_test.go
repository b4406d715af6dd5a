package ifconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

const sample = `# sample
[Defaults]
Bridge=br-default
Promiscuous=no

[Interface]
Name=rt-* vm7-*
Bridge=br-rt
MTU=9000
AllowMove=yes

[Interface]
Name=lab?
MAC=keep
`

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "qemu-ifup.conf", sample)
	runDir := filepath.Join(dir, "run")
	d := openRunDir(t, runDir)
	if err := WriteRecord(d, "rt-rec", Settings{Bridge: "br-launch", MTU: 1400}); err != nil {
		t.Fatal(err)
	}
	recPath := d.RecordPath("rt-rec")
	builtin := tap.Port{Bridge: "virbr0", MAC: tap.MACHigh, Promisc: true}

	tests := []struct {
		name   string
		ifname string
		env    map[string]string
		want   Choice
	}{
		{"no config", "tap0", map[string]string{EnvConfig: filepath.Join(dir, "missing")},
			Choice{Port: builtin, From: "default"}},
		{"defaults section", "tap0", nil,
			Choice{Port: tap.Port{Bridge: "br-default", MAC: tap.MACHigh}, From: cfg + ":3"}},
		{"first matching rule", "vm7-net0", nil,
			Choice{Port: tap.Port{Bridge: "br-rt", MTU: 9000, MAC: tap.MACHigh, AllowMove: true}, From: cfg + ":8"}},
		{"glob with ?", "lab1", nil,
			Choice{Port: tap.Port{Bridge: "br-default", MAC: tap.MACKeep}, From: cfg + ":3"}},
		{"QEMU_BRIDGE beats the config", "vm7-net0", map[string]string{EnvBridge: "br-env"},
			Choice{Port: tap.Port{Bridge: "br-env", MTU: 9000, MAC: tap.MACHigh, AllowMove: true}, From: EnvBridge}},
		{"record beats everything", "rt-rec", map[string]string{EnvBridge: "br-env"},
			Choice{Port: tap.Port{Bridge: "br-launch", MTU: 1400, MAC: tap.MACHigh, AllowMove: true}, From: recPath + ":3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvConfig: cfg, EnvRunDir: runDir}
			for k, v := range tt.env {
				env[k] = v
			}
			got, err := Resolve(tt.ifname, Env{Getenv: func(k string) string { return env[k] }, Records: d})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Resolve(%s) (-want +got):\n%s", tt.ifname, diff)
			}
		})
	}
}

// TestResolveUntrustedEnv checks that a nil Getenv (setuid or file
// capabilities) reads no variable at all.
func TestResolveUntrustedEnv(t *testing.T) {
	e := Env{}
	if e.ConfigPath() != DefaultConfigPath || e.RunDir() != DefaultRunDir {
		t.Errorf("untrusted env paths = %s, %s", e.ConfigPath(), e.RunDir())
	}
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.conf", "[Defaults]\nBridge=virbr0\nMTU=jumbo\n")
	good := writeFile(t, dir, "good.conf", "")
	d := openRunDir(t, filepath.Join(dir, "run"))
	writeFile(t, d.Path, "tap9.conf", "[Interface]\nColour=blue\n")
	tests := []struct {
		name, ifname string
		env          map[string]string
		want         string
	}{
		{"bad config", "tap0", map[string]string{EnvConfig: bad}, bad + `:3: MTU: "jumbo" is not "bridge" or a number from 68 to 65535`},
		{"bad QEMU_BRIDGE", "tap0", map[string]string{EnvConfig: good, EnvBridge: "br 0"}, `QEMU_BRIDGE: invalid interface name "br 0": contains whitespace`},
		{"long QEMU_BRIDGE", "tap0", map[string]string{EnvConfig: good, EnvBridge: "virbr0-is-too-long"}, `QEMU_BRIDGE: invalid interface name "virbr0-is-too-long": 18 bytes, longer than 15`},
		{"bad record", "tap9", map[string]string{EnvConfig: good}, d.RecordPath("tap9") + `:2: unknown key "Colour"`},
		{"unreadable config", "tap0", map[string]string{EnvConfig: dir}, "read config: " + dir + ": not a regular file but a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.ifname, Env{Getenv: func(k string) string { return tt.env[k] }, Records: d})
			if err == nil || err.Error() != tt.want {
				t.Errorf("Resolve error = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[Interface]\nBridge=br0\n", "f:1: [Interface] without Name="},
		{"[Interface]\nName=\n", "f:2: Name: empty"},
		{"[Interface]\nName=[a\n", `f:2: Name: bad pattern "[a"`},
		{"[Bridge]\nName=x\n", "f:1: unknown section [Bridge] (want [Defaults] or [Interface])"},
		{"[Defaults]\nbridge=virbr0\n", `f:2: unknown key "bridge"`},
		{"[Defaults]\n\nBridge=a/b\n", `f:3: Bridge: invalid interface name "a/b": contains '/'`},
		{"[Defaults]\nMTU=67\n", `f:2: MTU: "67" is not "bridge" or a number from 68 to 65535`},
		{"[Defaults]\nMTU=65536\n", `f:2: MTU: "65536" is not "bridge" or a number from 68 to 65535`},
		{"[Defaults]\nMAC=random\n", `f:2: MAC: MAC policy "random" is neither high nor keep`},
		{"[Defaults]\nPromiscuous=maybe\n", `f:2: Promiscuous: "maybe" is not a boolean (yes or no)`},
		{"[Defaults]\nAllowMove=2\n", `f:2: AllowMove: "2" is not a boolean (yes or no)`},
		{"Bridge=virbr0\n", "f: line 1: Bridge= before any [section]"},
	}
	for _, tt := range tests {
		_, err := ParseConfig("f", []byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseConfig(%q) = %v, want %s", tt.in, err, tt.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	d := openRunDir(t, filepath.Join(t.TempDir(), "run"))
	dir := d.Path
	if r, err := ReadRecord(d, "tap0", nil); r != nil || err != nil {
		t.Fatalf("ReadRecord of a missing record = %v, %v", r, err)
	}
	s := Settings{Bridge: "br1", MTU: 9000, MAC: "keep"}
	if err := WriteRecord(d, "tap0", s); err != nil {
		t.Fatal(err)
	}
	r, err := ReadRecord(d, "tap0", nil)
	if err != nil {
		t.Fatal(err)
	}
	var p tap.Port
	for _, e := range r.Entries {
		if err := apply(&p, e); err != nil {
			t.Fatal(err)
		}
	}
	if want := (tap.Port{Bridge: "br1", MTU: 9000, MAC: tap.MACKeep}); p != want {
		t.Errorf("record gives %+v, want %+v", p, want)
	}
	if err := RemoveRecord(d, "tap0"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRecord(d, "tap0"); err != nil {
		t.Errorf("second RemoveRecord: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("run dir not empty after remove: %v", entries)
	}
}

func TestWriteRecordRejects(t *testing.T) {
	d := openRunDir(t, filepath.Join(t.TempDir(), "run"))
	dir := d.Path
	for _, tt := range []struct {
		ifname string
		s      Settings
		want   string
	}{
		{"../x", Settings{}, `invalid interface name "../x": contains '/'`},
		{"tap0", Settings{Bridge: "br 0"}, `record for tap0: Bridge: invalid interface name "br 0": contains whitespace`},
		{"tap0", Settings{MTU: 10}, `record for tap0: MTU: "10" is not "bridge" or a number from 68 to 65535`},
		{"tap0", Settings{MAC: "x"}, `record for tap0: MAC: MAC policy "x" is neither high nor keep`},
	} {
		err := WriteRecord(d, tt.ifname, tt.s)
		if err == nil || err.Error() != tt.want {
			t.Errorf("WriteRecord(%q, %+v) = %v, want %s", tt.ifname, tt.s, err, tt.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected records left files: %v", entries)
	}
}

// FuzzParseConfig checks that a config either parses into rules whose
// settings resolve, or fails with one line naming the file and a line.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("[Defaults]\nMTU=bridge\n[Interface]\nName=*\nMAC=keep\n"))
	f.Add([]byte("[Interface]\nName=a\\\n b\n"))
	f.Add([]byte("[Defaults]\nBridge=\xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("f.conf", data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "f.conf") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q does not name the file on one line", msg)
			}
			if !utf8.ValidString(msg) || strings.IndexFunc(msg, unicode.IsControl) >= 0 {
				t.Fatalf("error %q carries raw control characters or invalid UTF-8", msg)
			}
			return
		}
		var p tap.Port
		for _, e := range c.Defaults {
			if err := apply(&p, e); err != nil {
				t.Fatalf("accepted default %v does not apply: %v", e, err)
			}
		}
		for _, r := range c.Rules {
			for _, e := range r.Entries {
				if err := apply(&p, e); err != nil {
					t.Fatalf("accepted entry %v does not apply: %v", e, err)
				}
			}
			c.Match(r.Patterns[0])
		}
		if p.Bridge != "" {
			if err := link.ValidateName(p.Bridge); err != nil {
				t.Fatalf("accepted bridge %q: %v", p.Bridge, err)
			}
		}
	})
}

func openRunDir(t *testing.T, base string) *rundir.Dir {
	t.Helper()
	d, err := rundir.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
