package packaging

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestManPages formats each manual page as man would, with every groff
// warning on: a warning is a mistake in the page.
func TestManPages(t *testing.T) {
	needTools(t, "groff")
	pages, err := filepath.Glob(filepath.Join(repoRoot(t), "packaging/man/*.[1-8]"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 5 {
		t.Errorf("%d manual pages, want 5 (qemu-ifup, qemu-ifdown, qemu-launch, qemu-ifup.conf, qemu-bridge-helper): %v", len(pages), pages)
	}
	for _, p := range pages {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", p)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("groff -man -ww %s: %v\n%s", filepath.Base(p), err, stderr.Bytes())
		}
	}
}
