package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
)

// TestRunDirRemovedWithLastRecord: a namespace's run directory stays
// while a tap in it has a record or is up, and goes with the last one's
// qemu-ifdown, so that a namespace gone leaves nothing behind.
func TestRunDirRemovedWithLastRecord(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	dir := e.ns.RunDir(t, e.runDir)
	for _, tap := range []string{"tap0", "tap1"} {
		e.ns.AddTap(t, tap)
		// Signed by this process, alive: the record of a running VM.
		err := e.ns.Do(func() error {
			d, err := rundir.Open(e.runDir)
			if err != nil {
				return err
			}
			defer d.Close()
			return d.WriteRecord(tap, []byte("[Interface]\nBridge=virbr0\n"))
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := e.run("qemu-ifup", tap); r.code != 0 {
			t.Fatalf("qemu-ifup %s: %v", tap, r)
		}
	}
	if r := e.run("qemu-ifdown", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifdown tap0: %v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "tap1.conf")); err != nil {
		t.Fatalf("tap1's record, with tap1 still up: %v", err)
	}
	if r := e.run("qemu-ifdown", "tap1"); r.code != 0 {
		t.Fatalf("qemu-ifdown tap1: %v", r)
	}
	if ents, err := os.ReadDir(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s left after the last tap's qemu-ifdown: %v, %v", dir, ents, err)
	}
}

// TestIfdownWithFullRunDir: with the run directory's file system out of
// inodes, qemu-ifdown still locks and detaches the tap: it takes the lock
// file its qemu-ifup left, which needs no new inode, or, with none left
// (an ifup of an older version), goes on with a warning.
func TestIfdownWithFullRunDir(t *testing.T) {
	for _, tt := range []struct {
		name     string
		noLock   bool
		wantWarn string
	}{
		{name: "lock file left by qemu-ifup"},
		{name: "no lock file left", noLock: true,
			wantWarn: "no space left on device; locking without the run directory, detaching anyway"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			// A tmpfs of a few inodes as the run directory's base, on a
			// directory of the test's own.
			e.runDir = filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(e.runDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("qth-run", e.runDir, "tmpfs", 0, "mode=700,nr_inodes=32,size=1m"); err != nil {
				t.Fatalf("mount a tmpfs: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(e.runDir, unix.MNT_DETACH) })
			e.ns.AddBridge(t, "virbr0", 0)
			e.ns.AddTap(t, "tap0")
			if r := e.run("qemu-ifup", "tap0"); r.code != 0 {
				t.Fatalf("qemu-ifup: %v", r)
			}
			if tt.noLock {
				if err := os.Remove(filepath.Join(e.ns.RunDir(t, e.runDir), rundir.TapLock("tap0"))); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; ; i++ {
				f, err := os.Create(filepath.Join(e.runDir, fmt.Sprintf("fill%d", i)))
				if errors.Is(err, unix.ENOSPC) {
					break
				}
				if err != nil || i > 1000 {
					t.Fatalf("filling the run directory's inodes: %v after %d files", err, i)
				}
				f.Close()
			}
			r := e.run("qemu-ifdown", "tap0")
			if r.code != 0 {
				t.Errorf("qemu-ifdown with the run directory full: %v; want exit 0", r)
			}
			if tt.wantWarn != "" && !strings.Contains(r.stderr, tt.wantWarn) {
				t.Errorf("qemu-ifdown: stderr %q lacks %q", r.stderr, tt.wantWarn)
			}
			if tt.wantWarn == "" && strings.Contains(r.stderr, "warning") {
				t.Errorf("qemu-ifdown: stderr %q; want no warning: the lock file was there", r.stderr)
			}
			if m := e.port("tap0").Master; m != "" {
				t.Errorf("tap0 still a port of %q after qemu-ifdown", m)
			}
		})
	}
}
