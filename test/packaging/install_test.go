package packaging

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The paths qemu-system-common ships as conffiles and this package takes
// over.
var etcScripts = []string{"/etc/qemu-ifup", "/etc/qemu-ifdown"}

// fileSHA is the sha256 of a regular file, "" if it is missing, or
// "symlink -> target".
func fileSHA(t testing.TB, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(p)
		return "symlink -> " + target
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(data)
}

func debEnv() []string {
	return append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
}

// dpkg runs dpkg, waiting while another dpkg or apt holds the lock (a
// machine shared with other work); its output goes to the test log.
func dpkg(t testing.TB, args ...string) error {
	t.Helper()
	for i := 0; ; i++ {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err != nil && bytes.Contains(out, []byte("lock")) && i < 150 {
			time.Sleep(2 * time.Second)
			continue
		}
		t.Logf("dpkg %s:\n%s", strings.Join(args, " "), out)
		if err != nil {
			return errors.New("dpkg " + strings.Join(args, " ") + ": " + err.Error())
		}
		return nil
	}
}

// aptReinstall reinstalls qemu-system-common from the archive; extra are
// options for dpkg.
func aptReinstall(t testing.TB, dpkgOpts ...string) error {
	t.Helper()
	args := []string{"install", "--reinstall", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"}
	for _, o := range dpkgOpts {
		args = append(args, "-o", "Dpkg::Options::="+o)
	}
	args = append(args, "qemu-system-common")
	cmd := exec.Command("apt-get", args...)
	cmd.Env = debEnv()
	out, err := cmd.CombinedOutput()
	t.Logf("apt-get %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		return errors.New("apt-get " + strings.Join(args, " ") + ": " + err.Error())
	}
	return nil
}

func debStatus(pkg string) string {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg).Output()
	return strings.TrimSpace(string(out))
}

// diversions lists the diversions of the /etc scripts, as dpkg-divert
// --list prints them.
func diversions(t testing.TB) string {
	t.Helper()
	var all []string
	for _, f := range etcScripts {
		out, _ := exec.Command("dpkg-divert", "--list", f).Output()
		if s := strings.TrimSpace(string(out)); s != "" {
			all = append(all, s)
		}
	}
	return strings.Join(all, "\n")
}

// restoreDebian puts the machine back as it was before the test: our
// package purged, no diversion of ours left, qemu-system-common's scripts
// as they were (reinstalled with --force-confmiss if they changed).
func restoreDebian(t testing.TB, orig map[string]string) {
	if debStatus(name) != "" {
		if err := dpkg(t, "--purge", name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	for _, f := range etcScripts {
		out, _ := exec.Command("dpkg-divert", "--listpackage", f).Output()
		if strings.TrimSpace(string(out)) == name {
			t.Errorf("cleanup: diversion of %s by %s was left behind; removing it", f, name)
			cmd := exec.Command("dpkg-divert", "--package", name, "--remove", "--rename", "--divert", f+".distrib", f)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg-divert: %v\n%s", err, out)
			}
		}
	}
	changed := false
	for _, f := range etcScripts {
		if fileSHA(t, f) != orig[f] {
			changed = true
			// dpkg restores a conffile on reinstall only if it is missing.
			if fi, err := os.Lstat(f); err == nil && (fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0) {
				os.Remove(f)
			}
		}
	}
	if changed {
		t.Errorf("cleanup: qemu-system-common's scripts changed; reinstalling it")
		if err := aptReinstall(t, "--force-confmiss"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, f := range etcScripts {
			if got := fileSHA(t, f); got != orig[f] {
				t.Errorf("cleanup: %s still differs (sha256 %s, was %s)", f, got, orig[f])
			}
		}
	}
}

// checkOurs checks that QEMU's default scripts run our binaries and that
// qemu-system-common's are kept under their diverted names.
func checkOurs(t *testing.T, step string, orig map[string]string) {
	t.Helper()
	for _, f := range etcScripts {
		cmd := filepath.Base(f)
		if got, want := fileSHA(t, f), "symlink -> "+libexec+"/"+cmd; got != want {
			t.Errorf("%s: %s is %q, want %q", step, f, got, want)
		}
		out, err := exec.Command(f, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), cmd+" ") || strings.Contains(string(out), "devel") {
			t.Errorf("%s: %s --version: %v: %q, want our stamped %s", step, f, err, out, cmd)
		}
		if got := fileSHA(t, f+".distrib"); got != orig[f] {
			t.Errorf("%s: %s.distrib has sha256 %q, want Debian's %s", step, f, got, orig[f])
		}
	}
	wantDiv := "diversion of /etc/qemu-ifup to /etc/qemu-ifup.distrib by " + name + "\n" +
		"diversion of /etc/qemu-ifdown to /etc/qemu-ifdown.distrib by " + name
	if got := diversions(t); got != wantDiv {
		t.Errorf("%s: dpkg-divert --list:\n%s\nwant:\n%s", step, got, wantDiv)
	}
	out, err := exec.Command("/usr/bin/qemu-launch", "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "qemu-launch ") {
		t.Errorf("%s: qemu-launch --version: %v: %q", step, err, out)
	}
	// Run through the /usr/bin link, qemu-launch finds the helpers
	// next to its real path.
	out, err = exec.Command("/usr/bin/qemu-launch", "--help").CombinedOutput()
	for _, cmd := range []string{"qemu-ifup", "qemu-ifdown"} {
		if w := "(default: " + libexec + "/" + cmd + ")"; err != nil || !strings.Contains(string(out), w) {
			t.Errorf("%s: qemu-launch --help does not say %s: %v\n%s", step, w, err, out)
		}
	}
	if st := debStatus(name); st != "ii" {
		t.Errorf("%s: dpkg status of %s is %q, want ii (installed, configured)", step, name, st)
	}
	// dpkg must not have taken qemu-system-common's conffiles into ours
	// (what happens when a diverting package ships the path itself).
	conf, _ := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", name).Output()
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(string(conf)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			paths = append(paths, f[0])
		}
	}
	if strings.Join(paths, " ") != strings.Join(wantConffiles, " ") {
		t.Errorf("%s: conffiles of %s: %v, want %v", step, name, paths, wantConffiles)
	}
}

// checkDebian checks that qemu-system-common's scripts are back, byte for
// byte, and that nothing of ours is left.
func checkDebian(t *testing.T, step string, orig map[string]string) {
	t.Helper()
	for _, f := range etcScripts {
		if got := fileSHA(t, f); got != orig[f] {
			t.Errorf("%s: %s has sha256 %q, want Debian's %s", step, f, got, orig[f])
		}
		if got := fileSHA(t, f+".distrib"); got != "" {
			t.Errorf("%s: %s.distrib left behind (%s)", step, f, got)
		}
	}
	if got := diversions(t); got != "" {
		t.Errorf("%s: diversions left: %s", step, got)
	}
	for _, p := range []string{libexec, "/usr/bin/qemu-launch"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %s left behind (%v)", step, p, err)
		}
	}
}

// TestDebInstall installs the .deb beside Debian's qemu-system-common and
// goes through what an administrator does: install, reinstall (as an
// upgrade of) qemu-system-common, remove, install again, upgrade, purge.
func TestDebInstall(t *testing.T) {
	needRoot(t)
	needTools(t, "dpkg", "dpkg-deb", "dpkg-divert", "dpkg-query", "apt-get")
	need(t, debStatus("qemu-system-common") == "ii",
		"deb install test needs Debian's qemu-system-common installed (scripts/ensure-deps test installs qemu-system-x86)")
	need(t, debStatus(name) == "", name+" is installed on this machine; the deb install test would replace it")
	need(t, diversions(t) == "", "/etc/qemu-ifup or /etc/qemu-ifdown is already diverted: "+diversions(t))
	b := packages(t)
	deb := debFile(b.dist, b.version, runtime.GOARCH)

	orig := map[string]string{}
	for _, f := range etcScripts {
		orig[f] = fileSHA(t, f)
		if orig[f] == "" || strings.HasPrefix(orig[f], "symlink") {
			t.Fatalf("%s is %q, want qemu-system-common's file", f, orig[f])
		}
	}
	t.Cleanup(func() { restoreDebian(t, orig) })

	if err := dpkg(t, "-i", deb); err != nil {
		t.Fatal(err)
	}
	checkOurs(t, "dpkg -i", orig)
	checkHelperCap(t, "dpkg -i", "")
	t.Run("reproducible-when-installed", func(t *testing.T) {
		// Built again on a host where the package is installed: the same
		// bytes (nfpm once took the /etc links' modes from their targets,
		// which exist only then).
		again, err := makePackageAs(repoRoot(t), "", []string{runtime.GOARCH})
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range []func(string, string, string) string{debFile, rpmFile} {
			a := readFile(t, file(b.dist, b.version, runtime.GOARCH))
			c := readFile(t, file(again.dist, again.version, runtime.GOARCH))
			if !bytes.Equal(a, c) {
				t.Errorf("%s differs when built with the package installed: sha256 %s, then %s",
					filepath.Base(file(b.dist, b.version, runtime.GOARCH)), sha256Hex(a), sha256Hex(c))
			}
		}
	})
	t.Run("unit", func(t *testing.T) {
		// The installed template unit, an instance of it, and the
		// binary its ExecStart= names, as systemd sees them.
		needTools(t, "systemd-analyze")
		out, err := exec.Command("systemd-analyze", "verify", "qemu-launch@rt.service").CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify qemu-launch@rt.service: %v\n%s", err, out)
		}
	})

	// Reinstalling (or upgrading) qemu-system-common while ours is
	// installed: its conffiles go to the diverted names, ours stay.
	if err := aptReinstall(t); err != nil {
		t.Fatal(err)
	}
	checkOurs(t, "reinstall qemu-system-common", orig)

	if err := dpkg(t, "-r", name); err != nil {
		t.Fatal(err)
	}
	checkDebian(t, "dpkg -r", orig)
	checkNoHelperCap(t, "dpkg -r", "")
	if st := debStatus(name); st != "rc" {
		t.Errorf("dpkg -r: status %q, want rc (config files kept)", st)
	}

	// A config file the administrator changed survives reinstalling the
	// package (the example stays equivalent to no file at all, for
	// whatever else runs qemu-ifup on this machine meanwhile).
	const conf = "/etc/qemu-ifup.conf"
	edited := append(readFile(t, conf), "# edited by the packaging test\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dpkg(t, "-i", deb); err != nil {
		t.Fatal(err)
	}
	checkOurs(t, "dpkg -i again", orig)
	if !bytes.Equal(readFile(t, conf), edited) {
		t.Errorf("dpkg -i again: %s lost the administrator's change", conf)
	}

	// Upgrading our package: the new preinst finds the diversions in
	// place, the old postrm (upgrade) must leave them, the edited config
	// stays.
	next, err := makePackageAs(repoRoot(t), b.version+".1", []string{runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	if err := dpkg(t, "-i", debFile(next.dist, next.version, runtime.GOARCH)); err != nil {
		t.Fatal(err)
	}
	checkOurs(t, "upgrade", orig)
	// dpkg unpacked the new helper without a capability; the postinst
	// gave it one again.
	checkHelperCap(t, "upgrade", "")
	if got, _ := exec.Command("dpkg-query", "-W", "-f=${Version}", name).Output(); string(got) != next.version+"-1" {
		t.Errorf("upgrade: version %s installed, want %s-1", got, next.version)
	}
	if !bytes.Equal(readFile(t, conf), edited) {
		t.Errorf("upgrade: %s lost the administrator's change", conf)
	}

	if err := dpkg(t, "-P", name); err != nil {
		t.Fatal(err)
	}
	checkDebian(t, "dpkg -P", orig)
	checkNoHelperCap(t, "dpkg -P", "")
	for _, p := range []string{conf, "/etc/qemu-launch"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("dpkg -P: %s left behind (%v)", p, err)
		}
	}
	if st := debStatus(name); st != "" && st != "un" && st != "pn" {
		t.Errorf("dpkg -P: status %q, want not installed", st)
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRPMInstall installs the .rpm into an empty root, as onto a Wind River
// Linux or Fedora image, with a hand-made /etc/qemu-ifup already there, and
// erases it again. busybox is the root's shell, so the scriptlets run.
func TestRPMInstall(t *testing.T) {
	needRoot(t)
	needTools(t, "rpm", "busybox", "chroot")
	b := packages(t)
	rpmPath := rpmFile(b.dist, b.version, runtime.GOARCH)
	root := t.TempDir()

	busybox, _ := exec.LookPath("busybox")
	if err := checkStatic(readFile(t, busybox), runtime.GOARCH); err != nil {
		need(t, false, "rpm install test needs a static busybox (Debian's busybox-static): "+err.Error())
	}
	for _, d := range []string{"bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), readFile(t, busybox), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "mv", "[", "test"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	handMade := []byte("#!/bin/sh\n# the administrator's own script\n")
	if err := os.WriteFile(filepath.Join(root, "etc/qemu-ifup"), handMade, 0o755); err != nil {
		t.Fatal(err)
	}

	rpm := func(args ...string) {
		t.Helper()
		run(t, "", nil, "rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...)
	}
	rpm("--initdb")
	rpm("-i", "--nodeps", rpmPath)
	checkHelperCap(t, "rpm -i", root)

	for _, f := range etcScripts {
		cmd := filepath.Base(f)
		if got, want := fileSHA(t, root+f), "symlink -> ../usr/libexec/qemu-tap-helpers/"+cmd; got != want {
			t.Errorf("%s is %q, want %q", f, got, want)
		}
		// Inside the root the link resolves to our binary, stamped with
		// the package's version.
		out, err := exec.Command("chroot", root, f, "--version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != cmd+" "+b.version {
			t.Errorf("chroot %s --version: %v: %q, want %q", f, err, out, cmd+" "+b.version)
		}
	}
	if got := readFile(t, root+"/etc/qemu-ifup.rpmorig"); !bytes.Equal(got, handMade) {
		t.Errorf("/etc/qemu-ifup.rpmorig: %q, want the hand-made script", got)
	}
	if _, err := os.Lstat(root + "/etc/qemu-ifdown.rpmorig"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/etc/qemu-ifdown.rpmorig made from nothing (%v)", err)
	}
	if out, err := exec.Command("chroot", root, "/usr/bin/qemu-launch", "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "qemu-launch ") {
		t.Errorf("chroot qemu-launch --version: %v: %q", err, out)
	}
	// Every file, link and directory as the package's header says (the
	// root has a shell, but no package providing /bin/sh).
	rpm("-V", "--nodeps", name)
	for p, e := range want("rpm") {
		fi, err := os.Lstat(root + p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if e.kind == 'f' && !bytes.Equal(readFile(t, root+p), rpmPayload(t, rpmPath)[p].data) {
			t.Errorf("%s: installed content differs from the package", p)
		}
		if e.kind != 'l' && fi.Mode().Perm() != e.mode {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), e.mode)
		}
	}

	// %config(noreplace): reinstalling keeps the administrator's change.
	conf := root + "/etc/qemu-ifup.conf"
	edited := append(readFile(t, conf), "# edited\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	rpm("-i", "--nodeps", "--replacepkgs", rpmPath)
	if !bytes.Equal(readFile(t, conf), edited) {
		t.Errorf("rpm --replacepkgs replaced the edited /etc/qemu-ifup.conf")
	}

	rpm("-e", name)
	checkNoHelperCap(t, "rpm -e", root)
	if got := readFile(t, root+"/etc/qemu-ifup"); !bytes.Equal(got, handMade) {
		t.Errorf("after rpm -e, /etc/qemu-ifup is %q, want the hand-made script back", got)
	}
	for _, p := range []string{"/etc/qemu-ifdown", "/etc/qemu-ifup.rpmorig", libexec, "/usr/bin/qemu-launch"} {
		if _, err := os.Lstat(root + p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after rpm -e, %s left behind (%v)", p, err)
		}
	}
	if got := readFile(t, conf+".rpmsave"); !bytes.Equal(got, edited) {
		t.Errorf("after rpm -e, the edited config was not kept as .rpmsave")
	}
}

// helperPath is the bridge helper, which runs with a file capability.
const helperPath = libexec + "/qemu-bridge-helper"

// getcap returns what getcap prints for path under root: "" for a file
// without capabilities or no file at all.
func getcap(t *testing.T, root string) string {
	t.Helper()
	needTools(t, "getcap")
	out, _ := exec.Command("getcap", root+helperPath).CombinedOutput()
	return strings.TrimSpace(string(out))
}

// checkHelperCap checks that the installed bridge helper holds
// cap_net_admin in its effective and permitted sets (getcap prints
// "cap_net_admin=ep"; older versions "= cap_net_admin+ep"), and nothing else.
func checkHelperCap(t *testing.T, step, root string) {
	t.Helper()
	got := getcap(t, root)
	f := strings.Fields(got)
	if len(f) == 0 || f[0] != root+helperPath ||
		(f[len(f)-1] != "cap_net_admin=ep" && f[len(f)-1] != "cap_net_admin+ep") {
		t.Errorf("%s: getcap %s: %q, want cap_net_admin=ep", step, helperPath, got)
	}
	fi, err := os.Stat(root + helperPath)
	if err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Errorf("%s: %s: %v, mode %v; want no setuid or setgid bit", step, helperPath, err, fi.Mode())
	}
}

// checkNoHelperCap checks that the helper, and its capability, are gone.
func checkNoHelperCap(t *testing.T, step, root string) {
	t.Helper()
	if _, err := os.Lstat(root + helperPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: %s left behind (%v)", step, helperPath, err)
	}
	if got := getcap(t, root); strings.Contains(got, "cap_") {
		t.Errorf("%s: getcap still shows %q", step, got)
	}
}
