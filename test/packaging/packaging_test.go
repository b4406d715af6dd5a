// Package packaging tests the .deb and .rpm that make package builds: what
// they hold, that two builds are identical, and how they install: beside
// Debian's qemu-system-common with dpkg, and into an empty root with rpm.
package packaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

const name = "qemu-tap-helpers"

// arches are the Go architectures make package builds by default; the
// machine's own is added so that the install tests have a package to
// install.
func arches() []string {
	a := []string{"amd64", "arm64"}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		a = append(a, runtime.GOARCH)
	}
	return a
}

// rpmArch is the RPM name of a Go architecture.
func rpmArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return goarch
}

func debFile(dist, version, arch string) string {
	return filepath.Join(dist, fmt.Sprintf("%s_%s-1_%s.deb", name, version, arch))
}

func rpmFile(dist, version, arch string) string {
	return filepath.Join(dist, fmt.Sprintf("%s-%s-1.%s.rpm", name, version, rpmArch(arch)))
}

// need skips the test with why, or fails it where every test must run
// (QTH_REQUIRE_INTEGRATION=1, as in CI).
func need(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	nstest.Skip(t, why)
}

func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		_, err := exec.LookPath(tool)
		need(t, err == nil, "packaging test needs "+tool+" (scripts/ensure-deps test installs it)")
	}
}

func needRoot(t testing.TB) {
	t.Helper()
	need(t, os.Geteuid() == 0, "install test needs root (dpkg -i, rpm --root): run make test as root")
}

// repoRoot is the top of the source tree.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "packaging", "nfpm.yaml")); err != nil {
		t.Fatalf("source tree: %v", err)
	}
	return root
}

// run runs a command and returns its standard output; on failure it fails
// the test with everything the command printed.
func run(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := output(dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func output(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// A build is one run of make package.
type build struct {
	dist    string
	version string // packaging/version
	epoch   int64  // SOURCE_DATE_EPOCH: the commit's time
}

var (
	firstOnce  sync.Once
	firstBuild build
	firstErr   error
	tempDirs   []string
)

// packages builds the packages once for all tests of this binary.
func packages(t testing.TB) build {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building packages")
	}
	needTools(t, "make", "git")
	root := repoRoot(t)
	firstOnce.Do(func() { firstBuild, firstErr = makePackage(root) })
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return firstBuild
}

// makePackage runs make package into a fresh directory, staging in
// another, with SOURCE_DATE_EPOCH left to the build (the commit's time).
func makePackage(root string) (build, error) {
	return makePackageAs(root, "", arches())
}

// makePackageAs is makePackage for the given architectures, with the
// package version forced to version unless it is "".
func makePackageAs(root, version string, arches []string) (build, error) {
	dist, err := os.MkdirTemp("", "qth-dist-")
	if err != nil {
		return build{}, err
	}
	stage, err := os.MkdirTemp("", "qth-stage-")
	if err != nil {
		return build{}, err
	}
	tempDirs = append(tempDirs, dist, stage)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") && !strings.HasPrefix(kv, "MAKEFLAGS=") &&
			!strings.HasPrefix(kv, "PKG_VERSION=") {
			env = append(env, kv)
		}
	}
	env = append(env, "STAGE="+stage)
	if version != "" {
		env = append(env, "PKG_VERSION="+version)
	}
	if _, err := output(root, env, "make", "-s", "package", "DIST="+dist, "PKG_ARCHES="+strings.Join(arches, " ")); err != nil {
		return build{}, err
	}
	if version == "" {
		out, err := output(root, nil, "packaging/version")
		if err != nil {
			return build{}, err
		}
		version = string(out)
	}
	ct, err := output(root, nil, "git", "log", "-1", "--format=%ct")
	if err != nil {
		return build{}, err
	}
	b := build{dist: dist, version: strings.TrimSpace(version)}
	if _, err := fmt.Sscan(string(ct), &b.epoch); err != nil {
		return build{}, fmt.Errorf("commit time %q: %v", ct, err)
	}
	return b, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestReproducible builds the packages a second time, staging elsewhere,
// and expects the same bytes: what a user rebuilding a release gets.
func TestReproducible(t *testing.T) {
	first := packages(t)
	second, err := makePackage(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if second.version != first.version {
		t.Fatalf("version changed between builds: %s, then %s", first.version, second.version)
	}
	for _, arch := range arches() {
		for _, file := range []func(string, string, string) string{debFile, rpmFile} {
			a, err := os.ReadFile(file(first.dist, first.version, arch))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(file(second.dist, second.version, arch))
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Base(file(first.dist, first.version, arch))
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs between two builds: sha256 %s, then %s", base, sha256Hex(a), sha256Hex(b))
			} else {
				t.Logf("%s: %d bytes, sha256 %s both times", base, len(a), sha256Hex(a))
			}
		}
	}
}
