package bridgeacl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// writeFiles writes name -> content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheckFile(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string // bridge.conf is the top file
		bridge string
		want   string // "" allowed, else the error
	}{
		{"allowed", map[string]string{"bridge.conf": "allow virbr0\n"}, "virbr0", ""},
		{"allow all", map[string]string{"bridge.conf": "allow all\n"}, "br-anything", ""},
		{"comments and blanks", map[string]string{"bridge.conf": "# ACL\n\n   # indented\n\tallow\tvirbr0  \n"}, "virbr0", ""},
		{"no match denies", map[string]string{"bridge.conf": "allow virbr0\n"}, "br1",
			`bridge br1 not allowed by DIR/bridge.conf (add the line "allow br1" to allow it)`},
		{"empty file denies", map[string]string{"bridge.conf": ""}, "virbr0",
			`bridge virbr0 not allowed by DIR/bridge.conf (add the line "allow virbr0" to allow it)`},
		{"deny all after allow", map[string]string{"bridge.conf": "allow virbr0\ndeny all\n"}, "virbr0",
			"bridge virbr0 denied by DIR/bridge.conf:2 (deny all); deny wins over allow, remove that line to allow it"},
		{"deny before allow still wins", map[string]string{"bridge.conf": "deny virbr0\nallow all\n"}, "virbr0",
			"bridge virbr0 denied by DIR/bridge.conf:1 (deny virbr0); deny wins over allow, remove that line to allow it"},
		{"deny of another bridge", map[string]string{"bridge.conf": "allow all\ndeny br-uplink\n"}, "virbr0", ""},
		{"include allows", map[string]string{"bridge.conf": "include /DIR/more.conf\n", "more.conf": "allow br1\n"}, "br1", ""},
		{"relative include beside the file", map[string]string{"bridge.conf": "include more.conf\n", "more.conf": "allow br1\n"}, "br1", ""},
		{"deny in an include wins", map[string]string{"bridge.conf": "allow all\ninclude more.conf\n", "more.conf": "deny br1\n"}, "br1",
			"bridge br1 denied by DIR/more.conf:1 (deny br1); deny wins over allow, remove that line to allow it"},
		{"missing file", map[string]string{}, "virbr0",
			`bridge virbr0 not allowed: no ACL file DIR/bridge.conf (create it with the line "allow virbr0")`},
		{"missing include fails closed", map[string]string{"bridge.conf": "allow all\ninclude gone.conf\n"}, "virbr0",
			"ACL: DIR/bridge.conf:2: include: open DIR/gone.conf: no such file or directory"},
		{"bad line in an include fails closed", map[string]string{"bridge.conf": "allow all\ninclude more.conf\n", "more.conf": "deny\n"}, "virbr0",
			`ACL: DIR/bridge.conf:2: include: DIR/more.conf:1: "deny": want allow NAME, deny NAME or include FILE`},
		{"include loop", map[string]string{"bridge.conf": "include a.conf\n", "a.conf": "include bridge.conf\n"}, "virbr0",
			"ACL: DIR/bridge.conf:1: include: DIR/a.conf:1: include: DIR/bridge.conf: included again from DIR/a.conf (an include loop)"},
		{"unknown command", map[string]string{"bridge.conf": "permit virbr0\n"}, "virbr0",
			`ACL: DIR/bridge.conf:1: unknown command "permit" (want allow, deny or include)`},
		{"long name in the file", map[string]string{"bridge.conf": "allow " + strings.Repeat("b", 16) + "\n"}, "virbr0",
			`ACL: DIR/bridge.conf:1: invalid interface name "bbbbbbbbbbbbbbbb": 16 bytes, longer than 15`},
		{"trailing comment is not one", map[string]string{"bridge.conf": "allow virbr0 # lab\n"}, "virbr0",
			`ACL: DIR/bridge.conf:1: invalid interface name "virbr0 # lab": contains whitespace`},
		// CVE-2019-13164: a name past IFNAMSIZ was truncated by the
		// kernel after the ACL had compared it whole.
		{"16-byte bridge refused before the file is read", map[string]string{}, strings.Repeat("v", 15) + "1",
			`invalid interface name "vvvvvvvvvvvvvvv1": 16 bytes, longer than 15`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			dir := t.TempDir()
			for k, v := range tt.files {
				files[k] = strings.ReplaceAll(v, "/DIR", dir)
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckFile(filepath.Join(dir, "bridge.conf"), tt.bridge, Options{})
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), dir, "DIR")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CheckFile (-want +got):\n%s", diff)
			}
			if tt.want != "" && strings.Contains(tt.want, "allow it") {
				var de *DeniedError
				if !errors.As(err, &de) {
					t.Errorf("error %v is not a *DeniedError", err)
				}
			}
		})
	}
}

func TestLoadRules(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"bridge.conf": "allow virbr0\ninclude more.conf\ndeny all\n",
		"more.conf":   "allow br1\n",
	})
	a, err := Load(filepath.Join(dir, "bridge.conf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	top, more := filepath.Join(dir, "bridge.conf"), filepath.Join(dir, "more.conf")
	want := []Rule{
		{Allow: true, Bridge: "virbr0", File: top, Line: 1},
		{Allow: true, Bridge: "br1", File: more, Line: 1},
		{Allow: false, Bridge: "all", File: top, Line: 3},
	}
	if diff := cmp.Diff(want, a.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
}

// TestStrict checks the files a capability-holding helper trusts: regular,
// owned by root, writable only by root; never a FIFO it would block on.
func TestStrict(t *testing.T) {
	dir := nstest.TrustedDir(t)
	path := filepath.Join(dir, "bridge.conf")
	if err := os.WriteFile(path, []byte("allow virbr0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, Options{Strict: true})
	if os.Geteuid() == 0 {
		if err == nil || !strings.Contains(err.Error(), "not trusted: owned by root with mode 0664;") {
			t.Errorf("Load of a group-writable file = %v", err)
		}
		os.Chmod(path, 0o644)
		if _, err := Load(path, Options{Strict: true}); err != nil {
			t.Errorf("Load of a root-owned 0644 file: %v", err)
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(path, Options{Strict: true}); err == nil || !strings.Contains(err.Error(), "not trusted: owned by uid ") {
		t.Errorf("Load of a file not owned by root = %v", err)
	}
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fifo, Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Load of a FIFO = %v", err)
	}
}

// TestACLIncludeInUserWritableDir: an included file sits in a directory a
// user may write. That user may swap it for a symlink to an empty file of
// root's, and a deny line is lost: the helper refuses every bridge instead,
// as for any other error in an include.
func TestACLIncludeInUserWritableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		nstest.Skip(t, "test needs root: it gives a directory to nobody")
	}
	dir := nstest.TrustedDir(t)
	top, empty := filepath.Join(dir, "bridge.conf"), filepath.Join(dir, "empty.conf")
	sub := filepath.Join(dir, "lab")
	inc := filepath.Join(sub, "lab.conf")
	if err := os.WriteFile(top, []byte("allow all\ninclude lab/lab.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// What the administrator wrote, in a directory nobody may write.
	if err := os.WriteFile(inc, []byte("deny virbr0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sub, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// What nobody makes of it.
	if err := os.Remove(inc); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(empty, inc); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(inc, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := CheckFile(top, "virbr0", Options{Strict: true})
	want := "ACL: " + top + ":2: include: " + inc + ": not trusted: its directory " + sub + " is owned by uid 65534 ("
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "(fix: chown root:root "+sub+")") {
		t.Errorf("CheckFile = %v\nwant %s...(fix: chown root:root %s)", err, want, sub)
	}
	// Back in root's hands, the include is read and its deny holds.
	if err := os.Chown(sub, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(inc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inc, []byte("deny virbr0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var de *DeniedError
	if err := CheckFile(top, "virbr0", Options{Strict: true}); !errors.As(err, &de) || de.By == nil || de.By.File != inc {
		t.Errorf("CheckFile with the include root's = %v, want the deny of %s", err, inc)
	}
}
