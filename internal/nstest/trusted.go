package nstest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/trust"
)

// trustedBase holds the trusted directories of tests: root's, mode 0755,
// under / alone, unlike os.TempDir(), which anyone may write.
const trustedBase = "/run"

// TrustedDir returns a new directory, mode 0755 and removed when the test
// ends, whose files root's trust check accepts (package trust) once root
// owns them and no one else may write them: a test's TempDir, under /tmp,
// would never pass. Run by a user other than root, who checks nothing, it
// is a TempDir.
func TrustedDir(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(trustedBase, "qth-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, ".probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := trust.Check(probe); err != nil {
		t.Fatalf("no trusted directory for the test: %v", err)
	}
	os.Remove(probe)
	return dir
}
