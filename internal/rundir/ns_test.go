package rundir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
)

func TestOpenRefuses(t *testing.T) {
	nstest.RequireRoot(t) // chown
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	os.Mkdir(target, 0o700)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	for _, tt := range []struct{ base, want string }{
		{other, "owned by uid 65534, not 0"},
		{link, "not a directory (a symlink?)"},
		{file, "not a directory"},
	} {
		d, err := rundir.Open(tt.base)
		if err == nil {
			d.Close()
			t.Errorf("rundir.Open(%s) succeeded", tt.base)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("rundir.Open(%s) = %v, want %q", tt.base, err, tt.want)
		}
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("created through the symlink: %v", ents)
	}
}

// Each namespace has its own directory, hence its own records and locks.
func TestPerNamespace(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	var paths []string
	for range 2 {
		ns := nstest.New(t)
		err := ns.Do(func() error {
			d, err := rundir.Open(base)
			if err != nil {
				return err
			}
			defer d.Close()
			paths = append(paths, d.Path)
			return d.WriteRecord("tap0", []byte("[Interface]\nBridge=br-"+ns.Name+"\n"))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if paths[0] == paths[1] {
		t.Fatalf("two namespaces share %s", paths[0])
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, "tap0.conf")); err != nil {
			t.Error(err)
		}
	}
}
