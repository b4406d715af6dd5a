package ifconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if err := WriteRecord(d, "rt-rec", settings(t, "Bridge=br-launch", "MTU=1400")); err != nil {
		t.Fatal(err)
	}
	recPath := d.RecordPath("rt-rec")
	builtin := tap.Port{Bridge: "virbr0", MAC: tap.MACHigh, Promisc: true}

	// want is the port and where its bridge came from.
	type want struct {
		Port tap.Port
		From string
	}
	tests := []struct {
		name   string
		ifname string
		env    map[string]string
		want   want
	}{
		{"no config", "tap0", map[string]string{EnvConfig: filepath.Join(dir, "missing")},
			want{Port: builtin, From: "default"}},
		{"defaults section", "tap0", nil,
			want{Port: tap.Port{Bridge: "br-default", MAC: tap.MACHigh}, From: cfg + ":3"}},
		{"first matching rule", "vm7-net0", nil,
			want{Port: tap.Port{Bridge: "br-rt", MTU: 9000, MAC: tap.MACHigh, AllowMove: true}, From: cfg + ":8"}},
		{"glob with ?", "lab1", nil,
			want{Port: tap.Port{Bridge: "br-default", MAC: tap.MACKeep}, From: cfg + ":3"}},
		{"QEMU_BRIDGE beats the config", "vm7-net0", map[string]string{EnvBridge: "br-env"},
			want{Port: tap.Port{Bridge: "br-env", MTU: 9000, MAC: tap.MACHigh, AllowMove: true}, From: EnvBridge}},
		{"record beats everything", "rt-rec", map[string]string{EnvBridge: "br-env"},
			want{Port: tap.Port{Bridge: "br-launch", MTU: 1400, MAC: tap.MACHigh, AllowMove: true}, From: recPath + ":3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvConfig: cfg, EnvRunDir: runDir}
			for k, v := range tt.env {
				env[k] = v
			}
			s, err := Resolve(tt.ifname, Env{Getenv: func(k string) string { return env[k] }, Records: d})
			if err != nil {
				t.Fatal(err)
			}
			got := want{Port: s.Port(), From: s.Origin(KeyBridge).String()}
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
		{"[Defaults]\nVLAN=0\n", `f:2: VLAN: "0" is not a VLAN ID from 1 to 4094`},
		{"[Defaults]\nVLAN=4095\n", `f:2: VLAN: "4095" is not a VLAN ID from 1 to 4094`},
		{"[Defaults]\nTrunks=\n", `f:2: Trunks: no VLAN given`},
		{"[Defaults]\nTrunks=10 30-20\n", `f:2: Trunks: VLAN range "30-20" runs backwards`},
		{"[Defaults]\nIsolated=maybe\n", `f:2: Isolated: "maybe" is not a boolean (yes or no)`},
		{"[Defaults]\nUnicastFlood=\n", `f:2: UnicastFlood: "" is not a boolean (yes or no)`},
		{"[Defaults]\nGuestMAC=52:54:00:12:34\n", `f:2: GuestMAC: "52:54:00:12:34" is not an Ethernet MAC address`},
		{"[Defaults]\nGuestMAC=01:00:5e:00:00:01\n", `f:2: GuestMAC: 01:00:5e:00:00:01 is a multicast address, which no NIC has`},
		{"[Defaults]\nVMName=a\"b\n", `f:2: VMName: "a\"b" has a character other than printable ASCII without quotes and backslashes`},
		{"[Defaults]\nLogicalPort=\n", `f:2: LogicalPort: "" is not 1 to 255 characters long`},
		{"[Defaults]\nLogicalPort=web 1\n", `f:2: LogicalPort: "web 1" has a character other than printable ASCII without spaces, quotes and backslashes`},
		{"[Defaults]\nOVNWait=0\n", `f:2: OVNWait: "0" is not a time from 1s to 10m0s (30, 30s, 2m)`},
		{"[Defaults]\nOVNWait=soon\n", `f:2: OVNWait: "soon" is not a time from 1s to 10m0s (30, 30s, 2m)`},
		{"[Defaults]\nVMUUID=8f3c4a55\n", `f:2: VMUUID: "8f3c4a55" is not a UUID (8f3c4a55-1b2c-4d5e-8f90-123456789abc)`},
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
	s := settings(t, "Bridge=br1", "MTU=9000", "MAC=keep")
	if err := WriteRecord(d, "tap0", s); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(d.RecordPath("tap0"))
	if err != nil {
		t.Fatal(err)
	}
	// The run directory adds its own lines (who wrote the record) after.
	wantData := "# Written by qemu-launch for qemu-ifup; removed by qemu-ifdown.\n[Interface]\nBridge=br1\nMTU=9000\nMAC=keep\n"
	if !strings.HasPrefix(string(data), wantData) {
		t.Errorf("record file = %q, want it to start %q", data, wantData)
	}
	r, err := ReadRecord(d, "tap0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Settings.Equal(s) {
		t.Errorf("record gives %v, want %v", r.Settings, s)
	}
	if err := RemoveRecord(d, "tap0"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRecord(d, "tap0"); err != nil {
		t.Errorf("second RemoveRecord: %v", err)
	}
	if entries := records(dir); len(entries) != 0 {
		t.Errorf("run dir not empty after remove: %v", entries)
	}
}

// TestHostBridgeKeys reads the keys of Open vSwitch and bridge port
// settings from a config file and carries them through a record.
func TestHostBridgeKeys(t *testing.T) {
	c, err := ParseConfig("f", []byte("[Interface]\nName=tap0\nVLAN=10\nTrunks=20,22 21 100-102\nIsolated=yes\nLearning=no\nUnicastFlood=off\nGuestMAC=52:54:00:AB:cd:01\nVMName=web 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Match("tap0").Settings
	p := s.Port()
	if p.VLAN != 10 || p.Trunks.String() != "20-22,100-102" || p.GuestMAC != "52:54:00:ab:cd:01" || p.VMName != "web 1" {
		t.Errorf("port = %+v", p)
	}
	if got, want := p.Flags.String(), "isolated on learning off flood off"; got != want {
		t.Errorf("flags %q, want %q", got, want)
	}
	want := "VLAN=10 Trunks=20-22,100-102 Isolated=yes Learning=no UnicastFlood=no GuestMAC=52:54:00:ab:cd:01 VMName=web 1"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	checkRecordKeeps(t, s)
	var merged Settings
	merged.Merge(s)
	if !merged.Equal(s) {
		t.Errorf("merged %v, want %v", merged, s)
	}
}

// TestOVNKeys reads an OVN logical port's keys and carries them through
// a record.
func TestOVNKeys(t *testing.T) {
	c, err := ParseConfig("f", []byte("[Interface]\nName=tap0\nBridge=br-int\nLogicalPort=vm-a\nOVNWait=45\nVMUUID=8F3C4A55-1B2C-4D5E-8F90-123456789ABC\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Match("tap0").Settings
	p := s.Port()
	if p.LogicalPort != "vm-a" || p.OVNWait != 45*time.Second || p.VMUUID != "8f3c4a55-1b2c-4d5e-8f90-123456789abc" {
		t.Errorf("port = %+v", p)
	}
	want := "Bridge=br-int LogicalPort=vm-a OVNWait=45s VMUUID=8f3c4a55-1b2c-4d5e-8f90-123456789abc"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	checkRecordKeeps(t, s)
}

// checkRecordKeeps writes s to tap0's record and checks that reading the
// record back gives s.
func checkRecordKeeps(t *testing.T, s Settings) {
	t.Helper()
	d := openRunDir(t, filepath.Join(t.TempDir(), "run"))
	if err := WriteRecord(d, "tap0", s); err != nil {
		t.Fatal(err)
	}
	r, err := ReadRecord(d, "tap0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Settings.Equal(s) {
		t.Errorf("record gives %v, want %v", r.Settings, s)
	}
}

func TestWriteRecordRejects(t *testing.T) {
	d := openRunDir(t, filepath.Join(t.TempDir(), "run"))
	err := WriteRecord(d, "../x", settings(t, "Bridge=br0"))
	if want := `invalid interface name "../x": contains '/'`; err == nil || err.Error() != want {
		t.Errorf("WriteRecord(../x) = %v, want %s", err, want)
	}
	if entries := records(d.Path); len(entries) != 0 {
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
		s := c.Defaults
		for _, r := range c.Rules {
			s.Merge(r.Settings)
			c.Match(r.Patterns[0])
		}
		// What a config accepts, a record carries unchanged.
		rec, err := ParseRecord("r", FormatRecord(s))
		if err != nil || !rec.Settings.Equal(s) {
			t.Fatalf("settings %v do not survive a record: %v, %v", s, rec, err)
		}
		if p := s.Port(); p.Bridge != "" {
			if err := link.ValidateName(p.Bridge); err != nil {
				t.Fatalf("accepted bridge %q: %v", p.Bridge, err)
			}
		}
	})
}

// records lists the files of the run directory dir but its own cookie.
func records(dir string) []string {
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != rundir.CookieFile {
			names = append(names, e.Name())
		}
	}
	return names
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

// settings builds the settings KEY=VALUE pairs give, as a file would.
func settings(t testing.TB, kvs ...string) Settings {
	t.Helper()
	var s Settings
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if err := s.SetNamed(k, v, Origin{File: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestSettingsMerge checks that a later source overrides only the keys it
// gives, each keeping the place it was given.
func TestSettingsMerge(t *testing.T) {
	s := Defaults()
	var rule Settings
	if err := rule.Set(KeyMTU, "9000", Origin{File: "f", Line: 4}); err != nil {
		t.Fatal(err)
	}
	var rec Settings
	if err := rec.Set(KeyMTU, "bridge", Origin{File: "r", Line: 2}); err != nil {
		t.Fatal(err)
	}
	s.Merge(rule)
	if got, want := s.String(), "Bridge=virbr0 MTU=9000 MAC=high Promiscuous=yes"; got != want {
		t.Errorf("after the rule: %s, want %s", got, want)
	}
	s.Merge(rec)
	if got, want := s.String(), "Bridge=virbr0 MTU=bridge MAC=high Promiscuous=yes"; got != want {
		t.Errorf("after the record: %s, want %s", got, want)
	}
	for key, want := range map[Key]string{KeyBridge: "default", KeyMTU: "r:2", KeyAllowMove: ""} {
		if got := s.Origin(key).String(); got != want {
			t.Errorf("Origin(%s) = %q, want %q", key, got, want)
		}
	}
	if s.Has(KeyAllowMove) || !s.Has(KeyMTU) {
		t.Errorf("Has: AllowMove %v, MTU %v; want false, true", s.Has(KeyAllowMove), s.Has(KeyMTU))
	}
	if err := s.Set(KeyMTU, "jumbo", Origin{}); err == nil || s.Port().MTU != 0 {
		t.Errorf("a rejected value changed the settings: %v, MTU %d", err, s.Port().MTU)
	}
}

// TestGuardKeys: the rates, bursts, Spoofing= and the repeatable
// IPAddress= of a section, as a record writes them back and a later
// source replaces them.
func TestGuardKeys(t *testing.T) {
	c, err := ParseConfig("f", []byte("[Interface]\nName=tap*\nInboundRate=1M\nInboundBurst=64K\nOutboundRate=500k\n"+
		"Spoofing=deny\nIPAddress=192.168.122.10\nIPAddress=fd00::10, 192.168.122.11\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Rules[0].Settings
	want := "InboundRate=1M InboundBurst=64K OutboundRate=500K Spoofing=deny IPAddress=192.168.122.10 fd00::10 192.168.122.11"
	if got := s.String(); got != want {
		t.Errorf("settings = %s, want %s", got, want)
	}
	p := s.Port()
	if p.Inbound.Rate != 1_000_000 || p.Inbound.Burst != 64<<10 || p.Outbound.Rate != 500_000 || !p.DenySpoofing {
		t.Errorf("port = %+v", p.PortSettings)
	}
	rec, err := ParseRecord("r", FormatRecord(s))
	if err != nil || !rec.Settings.Equal(s) {
		t.Errorf("record round trip = %v, %v; want %s", rec, err, want)
	}
	var later Settings
	if err := later.Set(KeyIPAddress, "10.0.0.1", Origin{File: "r"}); err != nil {
		t.Fatal(err)
	}
	s.Merge(later)
	if got := s.Port().Addrs.String(); got != "10.0.0.1" {
		t.Errorf("addresses after a later source = %s, want its own only", got)
	}
	if err := s.Set(KeyIPAddress, "", Origin{File: "r"}); err != nil || !s.Port().Addrs.IsEmpty() {
		t.Errorf("IPAddress= empty: %v, %s; want no addresses", err, s.Port().Addrs)
	}
	for _, bad := range []string{"InboundRate=fast", "OutboundBurst=1", "Spoofing=yes", "IPAddress=10.0.0.0/8"} {
		k, v, _ := strings.Cut(bad, "=")
		if err := new(Settings).SetNamed(k, v, Origin{}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
