package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMakeInstall checks make install with DESTDIR and PREFIX, the opt-in
// /etc links that keep an existing script as .orig, and make uninstall
// putting it back.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make not found: %v", err)
	}
	dest := t.TempDir()
	etc := filepath.Join(dest, "etc")
	os.MkdirAll(etc, 0o755)
	orig := "#!/bin/sh\n# the distribution's script\n"
	if err := os.WriteFile(filepath.Join(etc, "qemu-ifup"), []byte(orig), 0o755); err != nil {
		t.Fatal(err)
	}
	make := func(target string, vars ...string) {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-C", "../..", target, "DESTDIR=" + dest, "PREFIX=/usr"}, vars...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	make("install", "INSTALL_ETC_LINKS=1")
	libexec := "/usr/libexec/qemu-tap-helpers"
	for _, f := range []string{"qemu-ifup", "qemu-ifdown"} {
		st, err := os.Stat(filepath.Join(dest, libexec, f))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s/%s: %v, mode %v", libexec, f, err, st)
		}
		if target, err := os.Readlink(filepath.Join(etc, f)); err != nil || target != filepath.Join(libexec, f) {
			t.Errorf("/etc/%s -> %q, %v; want -> %s/%s", f, target, err, libexec, f)
		}
	}
	if b, err := os.ReadFile(filepath.Join(etc, "qemu-ifup.orig")); err != nil || string(b) != orig {
		t.Errorf("existing /etc/qemu-ifup not kept as .orig: %q, %v", b, err)
	}
	make("uninstall")
	if b, err := os.ReadFile(filepath.Join(etc, "qemu-ifup")); err != nil || string(b) != orig {
		t.Errorf("make uninstall did not restore /etc/qemu-ifup: %q, %v", b, err)
	}
	for _, p := range []string{"etc/qemu-ifdown", "etc/qemu-ifup.orig", "usr/libexec/qemu-tap-helpers"} {
		if _, err := os.Lstat(filepath.Join(dest, p)); !os.IsNotExist(err) {
			t.Errorf("%s left after make uninstall: %v", p, err)
		}
	}

	// Without the opt-in, /etc is left alone.
	make("install")
	if _, err := os.Lstat(filepath.Join(etc, "qemu-ifdown")); !os.IsNotExist(err) {
		t.Errorf("make install without INSTALL_ETC_LINKS=1 touched /etc: %v", err)
	}
}
