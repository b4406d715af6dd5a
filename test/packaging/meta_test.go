package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var binaries = []string{"qemu-ifup", "qemu-ifdown", "qemu-launch"}

// compiledIn is every module compiled into the packaged binaries, as
// their build information says, and the Go release that built them.
func compiledIn(t *testing.T, payload map[string]entry) (mods map[string]string, goVersion string) {
	t.Helper()
	mods = map[string]string{}
	for _, b := range binaries {
		info, err := buildinfo.Read(bytes.NewReader(payload[libexec+"/"+b].data))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		goVersion = info.GoVersion
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			mods[d.Path] = d.Version
		}
	}
	if len(mods) == 0 {
		t.Fatal("no module compiled into the binaries: build information missing?")
	}
	return mods, goVersion
}

// A dep5 is a machine-readable copyright file, paragraph by paragraph.
type dep5 []map[string]string

func parseDEP5(t *testing.T, text string) dep5 {
	t.Helper()
	var out dep5
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		p := map[string]string{}
		key := ""
		for _, line := range strings.Split(para, "\n") {
			if strings.HasPrefix(line, " ") {
				if key == "" {
					t.Fatalf("copyright: continuation line first in a paragraph: %q", line)
				}
				p[key] += "\n" + line
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("copyright: not a field: %q", line)
			}
			key = k
			p[k] = strings.TrimSpace(v)
		}
		out = append(out, p)
	}
	return out
}

// checkDEP5 checks a copyright file against the modules compiled in:
// the format's header, one Files paragraph with a copyright and a license
// for the project, the standard library and every module, and the text (or
// a pointer to it) of every license named.
func checkDEP5(t *testing.T, what, text string, mods map[string]string, goVersion string, commonDir string) {
	t.Helper()
	d := parseDEP5(t, text)
	if d[0]["Format"] != "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" || d[0]["Upstream-Name"] != name {
		t.Errorf("%s: header paragraph %v", what, d[0])
	}
	files := map[string]map[string]string{}
	licenses := map[string]string{}
	for _, p := range d[1:] {
		if f, ok := p["Files"]; ok {
			files[f] = p
			if p["Copyright"] == "" || p["License"] == "" {
				t.Errorf("%s: Files: %s lacks Copyright or License", what, f)
			}
			continue
		}
		if l, ok := p["License"]; ok {
			short, body, _ := strings.Cut(l, "\n")
			licenses[short] = body
		}
	}
	wantFiles := []string{"*", "std@" + goVersion + "/*"}
	for path, v := range mods {
		wantFiles = append(wantFiles, path+"@"+v+"/*")
	}
	var got []string
	for f := range files {
		got = append(got, f)
	}
	slices.Sort(got)
	slices.Sort(wantFiles)
	if !slices.Equal(got, wantFiles) {
		t.Errorf("%s: Files paragraphs %q, want one for the project, the standard library and each module compiled in: %q", what, got, wantFiles)
	}
	for f, p := range files {
		short, inline, _ := strings.Cut(p["License"], "\n")
		if inline != "" {
			continue
		}
		body, ok := licenses[short]
		switch {
		case !ok:
			t.Errorf("%s: Files: %s names license %s, which has no paragraph", what, f, short)
		case strings.Contains(body, "common-licenses"):
			if _, err := os.Stat(filepath.Join(commonDir, short)); commonDir != "" && err != nil {
				t.Errorf("%s: license %s points at %s: %v", what, short, commonDir, err)
			}
		case strings.Contains(body, "LICENSE, beside this file"):
		case len(body) < 500:
			t.Errorf("%s: license %s: neither its text nor where it is: %q", what, short, body)
		}
	}
	// The project's own line, and the Go authors' for the standard library.
	if !strings.Contains(files["*"]["Copyright"], "qemu-tap-helpers authors") {
		t.Errorf("%s: the project's copyright line: %q", what, files["*"]["Copyright"])
	}
	// The License field may carry the text after its first line, when
	// modules under the same license word it differently.
	std := files["std@"+goVersion+"/*"]
	if short, _, _ := strings.Cut(std["License"], "\n"); !strings.Contains(std["Copyright"], "The Go Authors") || short != "BSD-3-Clause" {
		t.Errorf("%s: the standard library's paragraph: %v", what, std)
	}
}

// TestLicenses checks what the packages say about the code compiled into
// their binaries: the copyright files, the .deb's Static-Built-Using and
// the .rpm's License and bundled() provides, against the binaries' own
// build information.
func TestLicenses(t *testing.T) {
	needTools(t, "dpkg-deb", "rpm", "rpm2archive")
	b := packages(t)
	for _, arch := range arches() {
		t.Run(arch, func(t *testing.T) {
			deb := debFile(b.dist, b.version, arch)
			payload := debPayload(t, deb)
			mods, goVersion := compiledIn(t, payload)
			checkDEP5(t, "deb copyright", string(payload[docDir+"/copyright"].data), mods, goVersion, "/usr/share/common-licenses")

			fields := controlFields(run(t, "", nil, "dpkg-deb", "--field", deb))
			sbu := fields["Static-Built-Using"]
			goMinor := regexp.MustCompile(`^go(\d+\.\d+)`).FindStringSubmatch(goVersion)
			if goMinor == nil || !strings.Contains(sbu, "golang-"+goMinor[1]+" (= "+strings.TrimPrefix(goVersion, "go")+")") {
				t.Errorf("Static-Built-Using %q lacks the Go compiler %s", sbu, goVersion)
			}
			for path, v := range mods {
				if !strings.Contains(sbu, "(= "+packageVersion(v)+")") {
					t.Errorf("Static-Built-Using %q lacks %s %s", sbu, path, v)
				}
			}
			if got := strings.Count(sbu, "(= "); got != len(mods)+1 {
				t.Errorf("Static-Built-Using names %d packages, want %d (the modules and Go): %q", got, len(mods)+1, sbu)
			}

			rpm := rpmFile(b.dist, b.version, arch)
			rp := rpmPayload(t, rpm)
			checkDEP5(t, "rpm copyright", string(rp[licenseDir+"/copyright"].data), mods, goVersion, "")
			lic := strings.TrimSpace(string(run(t, "", nil, "rpm", "-qp", "--qf", "%{LICENSE}", rpm)))
			for _, id := range []string{"Apache-2.0", "BSD-3-Clause"} {
				if !strings.Contains(lic, id) {
					t.Errorf("rpm License %q lacks %s", lic, id)
				}
			}
			var provides []string
			for _, p := range strings.Split(string(run(t, "", nil, "rpm", "-qp", "--provides", rpm)), "\n") {
				if strings.HasPrefix(p, "bundled(") {
					provides = append(provides, p)
				}
			}
			var want []string
			for path, v := range mods {
				want = append(want, fmt.Sprintf("bundled(golang(%s)) = %s", path, packageVersion(v)))
			}
			slices.Sort(want)
			slices.Sort(provides)
			if !slices.Equal(provides, want) {
				t.Errorf("rpm bundled provides %q, want %q", provides, want)
			}
			var licFiles []string
			for _, line := range strings.Split(string(run(t, "", nil, "rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", rpm)), "\n") {
				if f, flags, ok := strings.Cut(line, " "); ok && strings.Contains(flags, "l") {
					licFiles = append(licFiles, f)
				}
			}
			if w := []string{licenseDir + "/LICENSE", licenseDir + "/copyright"}; !slices.Equal(licFiles, w) {
				t.Errorf("rpm %%license files %q, want %q", licFiles, w)
			}
		})
	}
}

// firstEntry is the version in the first line of a Debian changelog.
func firstEntry(t *testing.T, gz []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^qemu-tap-helpers \(([^)]+)\) `).FindSubmatch(text)
	if m == nil {
		first, _, _ := bytes.Cut(text, []byte("\n"))
		t.Fatalf("changelog starts %q", first)
	}
	return string(m[1])
}

// TestOneVersion: the package version (packaging/version), the changelog's
// top entry and the binaries' --version are one version.
func TestOneVersion(t *testing.T) {
	needTools(t, "dpkg-deb", "rpm", "rpm2archive")
	b := packages(t)
	full := b.version + "-1"
	for _, arch := range arches() {
		t.Run(arch, func(t *testing.T) {
			payload := debPayload(t, debFile(b.dist, b.version, arch))
			if got := firstEntry(t, payload[docDir+"/changelog.Debian.gz"].data); got != full {
				t.Errorf("deb changelog's top entry %s, want %s", got, full)
			}
			// NEWS entries must name versions of the changelog (lintian).
			if got := firstEntry(t, payload[docDir+"/NEWS.Debian.gz"].data); dpkgCompare(t, got, "gt", full) {
				t.Errorf("deb NEWS entry %s is newer than the package, %s", got, full)
			}
			rpm := rpmFile(b.dist, b.version, arch)
			cl := string(run(t, "", nil, "rpm", "-qp", "--changelog", rpm))
			if first, _, _ := strings.Cut(cl, "\n"); !strings.HasSuffix(first, " - "+full) {
				t.Errorf("rpm changelog's top entry %q, want version %s", first, full)
			}
			if arch != runtime.GOARCH {
				return
			}
			dir := t.TempDir()
			for _, cmd := range binaries {
				p := filepath.Join(dir, cmd)
				if err := os.WriteFile(p, payload[libexec+"/"+cmd].data, 0o755); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(p, "--version").Output()
				if got, w := strings.TrimSpace(string(out)), cmd+" "+b.version; err != nil || got != w {
					t.Errorf("%s --version: %q (%v), want %q", cmd, got, err, w)
				}
			}
		})
	}
}

func dpkgCompare(t *testing.T, a, op, b string) bool {
	t.Helper()
	needTools(t, "dpkg")
	return exec.Command("dpkg", "--compare-versions", a, op, b).Run() == nil
}

// TestRPMPayloadRelative: every path in the .rpm's cpio payload is
// relative ("./usr/..."), so that rpm2cpio | cpio -idm unpacks into the
// current directory, never into the live /usr and /etc.
func TestRPMPayloadRelative(t *testing.T) {
	needTools(t, "rpm2cpio", "cpio")
	b := packages(t)
	for _, arch := range arches() {
		rpm := rpmFile(b.dist, b.version, arch)
		cmd := exec.Command("sh", "-c", `rpm2cpio "$1" | cpio -t --quiet`, "sh", rpm)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("rpm2cpio %s | cpio -t: %v", rpm, err)
		}
		names := strings.Fields(string(out))
		if len(names) == 0 {
			t.Fatalf("%s: empty payload", rpm)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "./") {
				t.Errorf("%s: payload path %q is not relative", filepath.Base(rpm), n)
			}
		}
	}
}

// TestLint runs lintian on each .deb and rpmlint on each .rpm: no error
// and no warning may be left, other than those overridden in the tree
// (packaging/lintian-overrides, packaging/rpmlint.toml), each with its
// reason.
func TestLint(t *testing.T) {
	needTools(t, "lintian", "rpmlint")
	b := packages(t)
	root := repoRoot(t)
	for _, arch := range arches() {
		t.Run(arch, func(t *testing.T) {
			deb := debFile(b.dist, b.version, arch)
			// --pedantic: every tag lintian has, shown; overrides apply.
			out, err := exec.Command("lintian", "--no-cfg", "--info", "--display-experimental", "--pedantic", deb).CombinedOutput()
			var tags []string
			for _, line := range strings.Split(string(out), "\n") {
				if regexp.MustCompile(`^[EWIPX]: `).MatchString(line) {
					tags = append(tags, line)
				}
			}
			if err != nil || len(tags) > 0 {
				t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, out)
			}

			rpm := rpmFile(b.dist, b.version, arch)
			out, err = exec.Command("rpmlint", "-c", filepath.Join(root, "packaging/rpmlint.toml"), rpm).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "0 errors, 0 warnings") {
				t.Errorf("rpmlint %s: %v\n%s", filepath.Base(rpm), err, out)
			}
		})
	}
}

// TestOverridesHaveReasons: every lintian override and every rpmlint
// filter follows a comment line saying why.
func TestOverridesHaveReasons(t *testing.T) {
	root := repoRoot(t)
	check := func(file string, isOverride func(line string) bool) {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		prev := ""
		n := 0
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if isOverride(line) {
				n++
				if !strings.HasPrefix(prev, "#") {
					t.Errorf("%s:%d: %q has no reason in a comment line above it", file, i+1, line)
				}
			}
			// Consecutive overrides share the comment above the first.
			if line == "" || strings.HasPrefix(line, "#") {
				prev = line
			}
		}
		if n == 0 {
			t.Errorf("%s: no override found", file)
		}
	}
	check("packaging/lintian-overrides", func(l string) bool { return strings.HasPrefix(l, name+": ") })
	check("packaging/rpmlint.toml", func(l string) bool { return strings.HasPrefix(l, `"`) })
}

// packageVersion is a module version as the packages carry it: no v, and
// a pseudo-version's or pre-release's "-" as "~", which both dpkg and rpm
// sort before the release, as Go does.
func packageVersion(v string) string {
	return strings.ReplaceAll(strings.TrimPrefix(v, "v"), "-", "~")
}
