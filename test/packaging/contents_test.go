package packaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	libexec = "/usr/libexec/qemu-tap-helpers"
	docDir  = "/usr/share/doc/qemu-tap-helpers"
	// licenseDir is the .rpm's %license directory.
	licenseDir = "/usr/share/licenses/qemu-tap-helpers"
)

// An entry is one path of a package's payload.
type entry struct {
	kind   byte        // 'd' directory, 'f' regular file, 'l' symlink
	mode   os.FileMode // permission bits (not for symlinks)
	target string      // symlink target
	src    string      // file of the tree it must hold ("" = not compared)
	gz     bool        // src is packaged gzipped
	data   []byte      // content as packaged
	uid    int
	gid    int
	mtime  int64
}

// want is every path the package must hold, and nothing else: beyond
// these, a .deb may only hold the parent directories of these paths.
func want(packager string) map[string]entry {
	dir := entry{kind: 'd', mode: 0o755}
	bin := entry{kind: 'f', mode: 0o755}
	file := func(src string) entry { return entry{kind: 'f', mode: 0o644, src: src} }
	man := func(src string) entry { return entry{kind: 'f', mode: 0o644, src: src, gz: true} }
	link := func(target string) entry { return entry{kind: 'l', target: target} }
	w := map[string]entry{
		libexec:                  dir,
		libexec + "/qemu-ifup":   bin,
		libexec + "/qemu-ifdown": bin,
		libexec + "/qemu-launch": bin,
		// Its capability is set on install: checked by the install tests.
		libexec + "/qemu-bridge-helper":                bin,
		"/usr/bin/qemu-launch":                         link("../libexec/qemu-tap-helpers/qemu-launch"),
		"/etc/qemu-ifup":                               link(libexec + "/qemu-ifup"),
		"/etc/qemu-ifdown":                             link(libexec + "/qemu-ifdown"),
		"/etc/qemu-ifup.conf":                          file("packaging/examples/qemu-ifup.conf"),
		"/etc/qemu-launch":                             dir,
		"/usr/lib/systemd/system/qemu-launch@.service": file("packaging/systemd/qemu-launch@.service"),
		"/usr/share/man/man8/qemu-ifup.8.gz":           man("packaging/man/qemu-ifup.8"),
		"/usr/share/man/man8/qemu-ifdown.8.gz":         man("packaging/man/qemu-ifdown.8"),
		"/usr/share/man/man8/qemu-launch.8.gz":         man("packaging/man/qemu-launch.8"),
		"/usr/share/man/man8/qemu-bridge-helper.8.gz":  man("packaging/man/qemu-bridge-helper.8"),
		"/usr/share/man/man5/qemu-ifup.conf.5.gz":      man("packaging/man/qemu-ifup.conf.5"),
		docDir:                                       dir,
		docDir + "/README.md":                        file("README.md"),
		docDir + "/examples":                         dir,
		docDir + "/examples/networkd":                dir,
		docDir + "/examples/vm.conf":                 file("packaging/examples/vm.conf"),
		docDir + "/examples/plain.conf":              file("packaging/examples/plain.conf"),
		docDir + "/examples/virbr0-nat.nft":          file("packaging/examples/virbr0-nat.nft"),
		docDir + "/examples/bridge.conf":             file("packaging/examples/bridge.conf"),
		docDir + "/examples/networkd/virbr0.netdev":  file("packaging/examples/networkd/virbr0.netdev"),
		docDir + "/examples/networkd/virbr0.network": file("packaging/examples/networkd/virbr0.network"),
	}
	// Generated for the build: checked by TestLicenses and TestOneVersion.
	generated := entry{kind: 'f', mode: 0o644}
	switch packager {
	case "deb":
		w[docDir+"/copyright"] = generated
		w[docDir+"/changelog.Debian.gz"] = generated
		w[docDir+"/NEWS.Debian.gz"] = generated
		w["/usr/share/lintian/overrides/qemu-tap-helpers"] = file("packaging/lintian-overrides")
	case "rpm":
		// rpm wants relative links; Debian Policy 10.5 absolute ones
		// between top-level directories.
		w["/etc/qemu-ifup"] = link("../usr/libexec/qemu-tap-helpers/qemu-ifup")
		w["/etc/qemu-ifdown"] = link("../usr/libexec/qemu-tap-helpers/qemu-ifdown")
		w[docDir+"/NEWS"] = generated
		w[licenseDir] = dir
		w[licenseDir+"/LICENSE"] = file("LICENSE")
		w[licenseDir+"/copyright"] = generated
	}
	return w
}

// wantConffiles are the files upgrades must not overwrite. /etc/qemu-ifup
// and /etc/qemu-ifdown must never be among them: dpkg cannot divert a
// conffile the diverting package ships.
var wantConffiles = []string{"/etc/qemu-ifup.conf"}

// readTar reads a whole tar stream into entries keyed by absolute path.
func readTar(r io.Reader) (map[string]entry, error) {
	got := map[string]entry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return nil, err
		}
		p := path.Clean("/" + strings.TrimPrefix(h.Name, "."))
		e := entry{mode: os.FileMode(h.Mode).Perm(), uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix()}
		switch h.Typeflag {
		case tar.TypeDir:
			e.kind = 'd'
		case tar.TypeSymlink:
			e.kind, e.target = 'l', h.Linkname
		case tar.TypeReg:
			e.kind = 'f'
			if e.data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
		default:
			return nil, fmt.Errorf("%s: unexpected tar type %q", p, h.Typeflag)
		}
		if _, dup := got[p]; dup {
			return nil, fmt.Errorf("%s appears twice", p)
		}
		got[p] = e
	}
}

// debPayload is the .deb's data archive.
func debPayload(t *testing.T, deb string) map[string]entry {
	t.Helper()
	got, err := readTar(bytes.NewReader(run(t, "", nil, "dpkg-deb", "--fsys-tarfile", deb)))
	if err != nil {
		t.Fatalf("%s: %v", deb, err)
	}
	return got
}

// rpmPayload is the .rpm's cpio payload, converted to tar by rpm's tools.
func rpmPayload(t *testing.T, rpm string) map[string]entry {
	t.Helper()
	f, err := os.Open(rpm)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out, stderr bytes.Buffer
	cmd := exec.Command("rpm2archive", "-n", "-")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rpm2archive %s: %v\n%s", rpm, err, stderr.Bytes())
	}
	got, err := readTar(&out)
	if err != nil {
		t.Fatalf("%s: %v", rpm, err)
	}
	return got
}

// checkPayload compares a payload with want, file by file, and checks
// that every binary is a static executable for arch.
func checkPayload(t *testing.T, root, packager, arch string, epoch int64, got map[string]entry) {
	t.Helper()
	w := want(packager)
	for p, we := range w {
		ge, ok := got[p]
		if !ok {
			t.Errorf("%s missing", p)
			continue
		}
		if ge.kind != we.kind {
			t.Errorf("%s: type %c, want %c", p, ge.kind, we.kind)
			continue
		}
		if we.kind != 'l' && ge.mode != we.mode {
			t.Errorf("%s: mode %04o, want %04o", p, ge.mode, we.mode)
		}
		// A link's mode is 0777 wherever it is built: nfpm once took it
		// from the link's target on the build host.
		if we.kind == 'l' && ge.mode != 0o777 {
			t.Errorf("%s: symlink mode %04o, want 0777", p, ge.mode)
		}
		if ge.target != we.target {
			t.Errorf("%s: points at %q, want %q", p, ge.target, we.target)
		}
		if we.src != "" {
			checkContent(t, root, p, we, ge.data)
		}
		if we.kind == 'l' {
			// A link must reach a binary of the package itself.
			to := ge.target
			if !path.IsAbs(to) {
				to = path.Join(path.Dir(p), to)
			}
			if w[to].kind != 'f' || w[to].mode != 0o755 {
				t.Errorf("%s -> %s: not a binary of the package", p, ge.target)
			}
		}
	}
	for p, ge := range got {
		if ge.uid != 0 || ge.gid != 0 {
			t.Errorf("%s: owner %d:%d, want root", p, ge.uid, ge.gid)
		}
		// Symlinks too: nfpm takes their time from the build host's
		// target unless told otherwise.
		if ge.mtime != epoch {
			t.Errorf("%s: mtime %d, want SOURCE_DATE_EPOCH %d", p, ge.mtime, epoch)
		}
		if _, ok := w[p]; ok {
			continue
		}
		if packager == "deb" && ge.kind == 'd' && ge.mode == 0o755 && isParent(p, w) {
			continue
		}
		t.Errorf("unexpected %c %s", ge.kind, p)
	}
	for _, cmd := range []string{"qemu-ifup", "qemu-ifdown", "qemu-launch", "qemu-bridge-helper"} {
		p := libexec + "/" + cmd
		if got[p].kind == 'f' {
			if err := checkStatic(got[p].data, arch); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
}

func checkContent(t *testing.T, root, p string, we entry, data []byte) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, we.src))
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if we.gz {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return
		}
		if zr.Name != "" || !zr.ModTime.IsZero() {
			t.Errorf("%s: gzip header holds name %q, time %v (not reproducible)", p, zr.Name, zr.ModTime)
		}
		if data, err = io.ReadAll(zr); err != nil {
			t.Errorf("%s: %v", p, err)
			return
		}
	}
	if !bytes.Equal(data, src) {
		t.Errorf("%s: content differs from %s", p, we.src)
	}
}

func isParent(dir string, w map[string]entry) bool {
	for p := range w {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkStatic fails unless an ELF executable runs without the dynamic
// linker: no interpreter, no shared library.
func checkStatic(data []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer f.Close()
	if m, ok := machines[arch]; ok && f.Machine != m {
		return fmt.Errorf("machine %v, want %v", f.Machine, m)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("has an interpreter (PT_INTERP): not statically linked")
		}
	}
	libs, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		return err
	}
	if len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v: not statically linked", libs)
	}
	return nil
}

// controlFields parses a Debian control file (no continuation lines are
// needed for the fields checked).
func controlFields(data []byte) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			f[k] = v
		}
	}
	return f
}

func TestDeb(t *testing.T) {
	needTools(t, "dpkg-deb")
	b := packages(t)
	root := repoRoot(t)
	for _, arch := range arches() {
		t.Run(arch, func(t *testing.T) {
			deb := debFile(b.dist, b.version, arch)
			checkPayload(t, root, "deb", arch, b.epoch, debPayload(t, deb))

			ctrl, err := readTar(bytes.NewReader(run(t, "", nil, "dpkg-deb", "--ctrl-tarfile", deb)))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for p := range ctrl {
				if ctrl[p].kind == 'f' {
					names = append(names, strings.TrimPrefix(p, "/"))
				}
			}
			slices.Sort(names)
			if w := []string{"conffiles", "control", "md5sums", "postinst", "postrm", "preinst", "prerm"}; !slices.Equal(names, w) {
				t.Errorf("control members %v, want %v", names, w)
			}
			fields := controlFields(ctrl["/control"].data)
			for k, v := range map[string]string{
				"Package": name, "Version": b.version + "-1", "Architecture": arch, "Section": "admin",
			} {
				if fields[k] != v {
					t.Errorf("control %s: %q, want %q", k, fields[k], v)
				}
			}
			// QEMU for this architecture is recommended, not needed.
			qemu := map[string]string{"amd64": "qemu-system-x86", "arm64": "qemu-system-arm"}[arch]
			if qemu == "" {
				qemu = "qemu-system"
			}
			// setcap (libcap2-bin) gives qemu-bridge-helper its capability.
			if rec := qemu + ", libcap2-bin"; fields["Recommends"] != rec || fields["Suggests"] != "nftables, openvswitch-switch, ovn-host" {
				t.Errorf("control Recommends %q, Suggests %q; want %q, %q", fields["Recommends"], fields["Suggests"], rec, "nftables, openvswitch-switch, ovn-host")
			}
			// Static binaries: the package needs nothing.
			for _, k := range []string{"Depends", "Pre-Depends", "Conflicts", "Breaks", "Replaces"} {
				if v, ok := fields[k]; ok {
					t.Errorf("control has %s: %s", k, v)
				}
			}
			if got := strings.Fields(string(ctrl["/conffiles"].data)); !slices.Equal(got, wantConffiles) {
				t.Errorf("conffiles %v, want %v", got, wantConffiles)
			}
			for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
				e := ctrl["/"+s]
				checkContent(t, root, s, entry{src: "packaging/scripts/deb/" + s}, e.data)
				if e.mode != 0o755 {
					t.Errorf("%s: mode %04o, want 0755", s, e.mode)
				}
			}
		})
	}
}

func TestRPM(t *testing.T) {
	needTools(t, "rpm", "rpm2archive", "dpkg-deb")
	b := packages(t)
	root := repoRoot(t)
	for _, arch := range arches() {
		t.Run(arch, func(t *testing.T) {
			rpm := rpmFile(b.dist, b.version, arch)
			payload := rpmPayload(t, rpm)
			checkPayload(t, root, "rpm", arch, b.epoch, payload)

			// The same binaries as in the .deb.
			deb := debPayload(t, debFile(b.dist, b.version, arch))
			for _, cmd := range []string{"qemu-ifup", "qemu-ifdown", "qemu-launch", "qemu-bridge-helper"} {
				p := libexec + "/" + cmd
				if !bytes.Equal(payload[p].data, deb[p].data) {
					t.Errorf("%s differs between the .rpm and the .deb", p)
				}
			}

			q := func(format string) string {
				return string(run(t, "", nil, "rpm", "-qp", "--qf", format, rpm))
			}
			if got, w := q("%{NAME} %{VERSION} %{RELEASE} %{ARCH}"), fmt.Sprintf("%s %s 1 %s", name, b.version, rpmArch(arch)); got != w {
				t.Errorf("rpm header: %q, want %q", got, w)
			}

			// One file capability: the bridge helper's, never setuid.
			var capped []string
			for _, line := range strings.Split(strings.TrimSpace(q("[%{FILENAMES}\t%{FILECAPS}\n]")), "\n") {
				if p, c, _ := strings.Cut(line, "\t"); c != "" {
					capped = append(capped, p+" "+c)
				}
			}
			if w := []string{libexec + "/qemu-bridge-helper cap_net_admin=ep"}; !slices.Equal(capped, w) {
				t.Errorf("file capabilities %q, want %q", capped, w)
			}

			// Config files are %config(noreplace); nothing else is config.
			var conf []string
			for _, line := range strings.Split(strings.TrimSpace(q("[%{FILENAMES}\t%{FILEFLAGS:fflags}\n]")), "\n") {
				p, flags, _ := strings.Cut(line, "\t")
				if strings.Contains(flags, "c") {
					if !strings.Contains(flags, "n") {
						t.Errorf("%s: %%config without noreplace (flags %q)", p, flags)
					}
					conf = append(conf, p)
				}
			}
			if !slices.Equal(conf, wantConffiles) {
				t.Errorf("config files %v, want %v", conf, wantConffiles)
			}

			for tag, src := range map[string]string{"PREIN": "pre", "POSTIN": "post", "PREUN": "preun", "POSTUN": "postun"} {
				got := q("%{" + tag + "}")
				if src == "" {
					if got != "(none)" {
						t.Errorf("%%%s scriptlet: %q, want none", strings.ToLower(tag), got)
					}
					continue
				}
				w, err := os.ReadFile(filepath.Join(root, "packaging/scripts/rpm", src))
				if err != nil {
					t.Fatal(err)
				}
				if strings.TrimSpace(got) != strings.TrimSpace(string(w)) {
					t.Errorf("%%%s scriptlet differs from packaging/scripts/rpm/%s:\n%s", strings.ToLower(tag), src, got)
				}
			}
			// Static binaries: nothing but the scriptlets' shell (once
			// per scriptlet) and rpm's own features.
			var reqs []string
			for _, req := range strings.Split(string(run(t, "", nil, "rpm", "-qp", "--requires", rpm)), "\n") {
				if req = strings.TrimSpace(req); req != "" && !strings.HasPrefix(req, "rpmlib(") {
					reqs = append(reqs, req)
				}
			}
			if reqs = slices.Compact(reqs); !slices.Equal(reqs, []string{"/bin/sh"}) {
				t.Errorf("requires %v, want [/bin/sh]", reqs)
			}
			qemu := map[string]string{"amd64": "/usr/bin/qemu-system-x86_64", "arm64": "/usr/bin/qemu-system-aarch64"}[arch]
			if got := strings.TrimSpace(string(run(t, "", nil, "rpm", "-qp", "--recommends", rpm))); qemu != "" && got != qemu {
				t.Errorf("recommends %q, want %q", got, qemu)
			}
			if got := strings.TrimSpace(string(run(t, "", nil, "rpm", "-qp", "--suggests", rpm))); got != "nftables\nopenvswitch\novn-host" {
				t.Errorf("suggests %q, want nftables, openvswitch and ovn-host", got)
			}
			if got := q("%{BUILDTIME}"); got != strconv.FormatInt(b.epoch, 10) {
				t.Errorf("build time %s, want SOURCE_DATE_EPOCH %d", got, b.epoch)
			}
		})
	}
}
