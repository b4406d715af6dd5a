package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
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
	if w := [][]string{{"rt-*", "vm7-*"}, {"lab*"}}; !slices.EqualFunc(pats, w, slices.Equal) {
		t.Errorf("uncommented: rules for %v, want %v", pats, w)
	}
	if r := c.Match("rt-vm1-0"); r == nil || r.Line != c.Rules[0].Line {
		t.Errorf("uncommented: rt-vm1-0 does not match the first rule")
	}
}
