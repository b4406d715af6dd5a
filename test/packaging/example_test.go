package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
)

// TestExampleQemuIfupConf checks the /etc/qemu-ifup.conf the packages
// install: as shipped it must parse and change nothing (every setting is a
// comment), and the commented-out settings, once uncommented as a user
// would, must parse too.
func TestExampleQemuIfupConf(t *testing.T) {
	const file = "packaging/examples/qemu-ifup.conf"
	data, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ifconf.ParseConfig(file, data)
	if err != nil {
		t.Fatalf("as shipped: %v", err)
	}
	if !c.Defaults.IsZero() || len(c.Rules) != 0 {
		t.Errorf("as shipped: defaults %q and %d rules set, want none (the built-in defaults)", c.Defaults, len(c.Rules))
	}

	// "#Key=value" and "#[Section]" lines are the settings to uncomment;
	// other comments are prose.
	setting := regexp.MustCompile(`(?m)^#(\[[A-Za-z]+\]|[A-Za-z]+=)`)
	uncommented := setting.ReplaceAll(data, []byte("$1"))
	c, err = ifconf.ParseConfig(file+" (uncommented)", uncommented)
	if err != nil {
		t.Fatalf("uncommented: %v", err)
	}
	if n := len(strings.Fields(c.Defaults.String())); n != 5 {
		t.Errorf("uncommented: %d defaults (%s), want 5", n, c.Defaults)
	}
	var pats [][]string
	for _, r := range c.Rules {
		pats = append(pats, r.Patterns)
	}
	if w := [][]string{{"rt-*", "vm7-*"}, {"lab*"}, {"shared*"}}; !slices.EqualFunc(pats, w, slices.Equal) {
		t.Errorf("uncommented: rules for %v, want %v", pats, w)
	}
	if r := c.Match("rt-vm1-0"); r == nil || r.Line != c.Rules[0].Line {
		t.Errorf("uncommented: rt-vm1-0 does not match the first rule")
	}
}

// TestExampleNetworkd checks the systemd-networkd example files against
// what the README and the nftables example set up: virbr0, a bridge, with
// 192.168.122.1/24, masquerade, and a DHCP pool clear of the README's static
// guest address 192.168.122.10.
func TestExampleNetworkd(t *testing.T) {
	root := repoRoot(t)
	read := func(file string) map[string]string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(root, "packaging/examples/networkd", file))
		if err != nil {
			t.Fatal(err)
		}
		secs, err := unitfile.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got := map[string]string{}
		for _, s := range secs {
			for _, e := range s.Entries {
				got[s.Name+"."+e.Key] = e.Value
			}
		}
		return got
	}
	tests := []struct {
		file string
		want map[string]string
	}{
		{"virbr0.netdev", map[string]string{"NetDev.Name": "virbr0", "NetDev.Kind": "bridge"}},
		{"virbr0.network", map[string]string{
			"Match.Name": "virbr0", "Network.Address": "192.168.122.1/24", "Network.IPMasquerade": "ipv4",
			"Network.ConfigureWithoutCarrier": "yes", "Network.DHCPServer": "yes",
			"DHCPServer.PoolOffset": "100", "DHCPServer.PoolSize": "100",
		}},
	}
	for _, tt := range tests {
		got := read(tt.file)
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: %s=%q, want %q", tt.file, k, got[k], v)
			}
		}
	}
	nft, err := os.ReadFile(filepath.Join(root, "packaging/examples/virbr0-nat.nft"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"virbr0"`, "192.168.122.0/24", "masquerade"} {
		if !strings.Contains(string(nft), w) {
			t.Errorf("virbr0-nat.nft lacks %s", w)
		}
	}
}
