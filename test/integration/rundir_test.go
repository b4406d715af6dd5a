package integration

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

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
