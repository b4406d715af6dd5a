package nstest

import (
	"os"
	"path/filepath"
	"testing"
)

// Tree writes files, by path relative to a new temporary root, and
// returns the root: a sample /proc and /sys for code that reads a host
// from a root it is given.
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, data := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
