// Package pkgmeta makes the parts of the packages that are derived from
// the build rather than kept by hand: the licenses of everything compiled
// into the binaries (read from the binaries' build information and the
// module cache), and the changelog entry of the version being built.
// packaging/meta is its command line; packaging/build runs it.
package pkgmeta

import (
	"debug/buildinfo"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// A Module is one Go module compiled into the binaries, or the Go
// standard library (Path "std").
type Module struct {
	Path    string // module path; "std" for the standard library
	Version string // v1.2.3 for modules, go1.26.8 for the standard library
	Dir     string // its source: the module cache, or GOROOT
}

// Std is the Path of the Go standard library.
const Std = "std"

// Modules reads the build information of binaries and returns every
// module compiled into any of them, sorted by path, the standard library
// first. Every binary must come from one Go release; the main module is
// left out (it is the package itself).
func Modules(binaries []string, modCache, goroot string) ([]Module, error) {
	seen := map[string]Module{}
	goVersion := ""
	for _, b := range binaries {
		info, err := buildinfo.ReadFile(b)
		if err != nil {
			return nil, fmt.Errorf("build information of %s: %w", b, err)
		}
		if goVersion != "" && info.GoVersion != goVersion {
			return nil, fmt.Errorf("%s built with %s, others with %s", b, info.GoVersion, goVersion)
		}
		goVersion = info.GoVersion
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			if prev, ok := seen[d.Path]; ok && prev.Version != d.Version {
				return nil, fmt.Errorf("%s: two versions compiled in, %s and %s", d.Path, prev.Version, d.Version)
			}
			dir, err := cacheDir(modCache, d.Path, d.Version)
			if err != nil {
				return nil, err
			}
			seen[d.Path] = Module{Path: d.Path, Version: d.Version, Dir: dir}
		}
	}
	if goVersion == "" {
		return nil, fmt.Errorf("no binaries")
	}
	mods := []Module{{Path: Std, Version: goVersion, Dir: goroot}}
	for _, m := range seen {
		mods = append(mods, m)
	}
	slices.SortFunc(mods[1:], func(a, b Module) int { return strings.Compare(a.Path, b.Path) })
	return mods, nil
}

// cacheDir is where the go command extracts a module: upper-case letters
// are escaped as "!" and the lower-case letter.
func cacheDir(modCache, path, version string) (string, error) {
	var b strings.Builder
	for _, r := range path + "@" + version {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	if strings.Contains(b.String(), "..") {
		return "", fmt.Errorf("module %s@%s: bad path", path, version)
	}
	return filepath.Join(modCache, filepath.FromSlash(b.String())), nil
}

// DebianName is the Debian source package name of a module, as the Debian
// Go team names them (github.com/coreos/go-systemd/v22 is
// golang-github-coreos-go-systemd, golang.org/x/sys golang-golang-x-sys);
// the standard library is golang-1.N.
func DebianName(m Module) string {
	if m.Path == Std {
		v := strings.TrimPrefix(m.Version, "go")
		if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
			v = parts[0] + "." + parts[1]
		}
		return "golang-" + v
	}
	elems := strings.Split(strings.ToLower(m.Path), "/")
	// A major-version suffix (/v2 and up) is not part of the name.
	if last := elems[len(elems)-1]; len(elems) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		elems = elems[:len(elems)-1]
	}
	// The host without its top-level domain: github.com is github.
	if host := elems[0]; strings.Contains(host, ".") {
		elems[0] = host[:strings.LastIndex(host, ".")]
		elems[0] = strings.ReplaceAll(elems[0], ".", "-")
	}
	name := "golang-" + strings.Join(elems, "-")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '+' {
			return r
		}
		return '-'
	}, name)
}

// PackageVersion is a module's version as dpkg and rpm take it: without
// the v, and a pseudo-version's or pre-release's "-" as "~" (before the
// release, as in Go).
func PackageVersion(m Module) string {
	v := strings.TrimPrefix(strings.TrimPrefix(m.Version, "go"), "v")
	v = strings.TrimSuffix(v, "+incompatible")
	return strings.ReplaceAll(v, "-", "~")
}
