package privs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestKeepOnly builds a program that calls KeepOnly(CAP_NET_ADMIN) as the
// helpers do (without cgo), runs it as root (every capability), and reads
// what each of its threads holds afterwards from /proc: CAP_NET_ADMIN in
// the permitted and effective sets, nothing else anywhere.
func TestKeepOnly(t *testing.T) {
	// Root: the program must start with capabilities to drop.
	nstest.RequireRoot(t)
	prog := filepath.Join(t.TempDir(), "keeponly")
	build := exec.Command("go", "build", "-o", prog, "./testdata/keeponly")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(prog).Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", prog, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 4 {
		t.Fatalf("keeponly printed %q, want the sets of at least one thread", out)
	}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":")
		want := "0000000000000000"
		if k == "CapPrm" || k == "CapEff" {
			want = "0000000000001000" // CAP_NET_ADMIN (12)
		}
		if strings.TrimSpace(v) != want {
			t.Errorf("after KeepOnly: %s, want %s", l, want)
		}
	}
}
