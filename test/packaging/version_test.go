package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersion runs packaging/version in a scratch repository through the
// life of a project: no tag, a release, commits after it, a pre-release,
// uncommitted changes. Each version must be what packaging/README.md
// promises, and dpkg and rpm must order them as they were made.
func TestVersion(t *testing.T) {
	dir, git := versionRepo(t)
	commit := func(msg string) {
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(msg), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", ".")
		git("commit", "-q", "-m", msg)
	}
	steps := []versionStep{
		{func() { commit("one") }, "0~git1.g%h"},
		{func() { commit("two") }, "0~git2.g%h"},
		{func() { git("tag", "v0.1.0") }, "0.1.0"},
		{func() { commit("three") }, "0.1.0+git1.g%h"},
		{func() { commit("four") }, "0.1.0+git2.g%h"},
		{func() { git("tag", "-a", "-m", "rc", "v0.2.0-rc1") }, "0.2.0~rc1"},
		// The release tag on the release candidate's commit.
		{func() { git("tag", "v0.2.0") }, "0.2.0"},
		{func() { os.WriteFile(filepath.Join(dir, "f"), []byte("edited"), 0o644) }, "0.2.0+dirty"},
		{func() { commit("five") }, "0.2.0+git1.g%h"},
		{func() { git("tag", "-a", "-m", "rc", "v0.3.0-rc.2") }, "0.3.0~rc.2"},
	}
	versions := checkVersions(t, dir, git, steps)

	// Each step is newer than the one before, for dpkg and for rpm.
	for i := 1; i < len(versions); i++ {
		a, b := versions[i-1], versions[i]
		if _, err := exec.LookPath("dpkg"); err == nil {
			if _, err := output("", nil, "dpkg", "--compare-versions", a, "lt", b); err != nil {
				t.Errorf("dpkg orders %s before %s", b, a)
			}
		}
		if _, err := exec.LookPath("rpm"); err == nil {
			got := strings.TrimSpace(string(run(t, "", nil, "rpm", "--eval", `%{lua: print(rpm.vercmp("`+a+`", "`+b+`"))}`)))
			if got != "-1" {
				t.Errorf("rpm orders %s before %s (vercmp %s)", b, a, got)
			}
		}
	}
}

// TestVersionFromReleaseFile: a clone without tags takes the last release
// from packaging/release, plus the commits since that file last changed;
// a release tag still wins.
func TestVersionFromReleaseFile(t *testing.T) {
	dir, git := versionRepo(t)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", ".")
		git("commit", "-q", "-m", name)
	}
	steps := []versionStep{
		{func() { write("f", "one") }, "0~git1.g%h"},
		{func() { write("packaging/release", "1.2.0\n# the last release\n") }, "1.2.0+git0.g%h"},
		{func() { write("f", "two") }, "1.2.0+git1.g%h"},
		{func() { write("f", "three") }, "1.2.0+git2.g%h"},
		{func() { git("tag", "v1.3.0") }, "1.3.0"},
	}
	checkVersions(t, dir, git, steps)
}

// versionRepo makes a scratch git repository holding packaging/version
// and returns it with a function that runs git in it.
func versionRepo(t *testing.T) (string, func(args ...string) string) {
	t.Helper()
	needTools(t, "git")
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging/version"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "packaging"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "packaging/version"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	git := func(args ...string) string {
		return strings.TrimSpace(string(run(t, dir, env, "git", args...)))
	}
	git("init", "-q")
	return dir, git
}

// A versionStep changes the repository, after which packaging/version
// must print want.
type versionStep struct {
	do   func()
	want string // %h is the abbreviated commit
}

// checkVersions takes the steps in turn, checks the version after each
// and returns the versions.
func checkVersions(t *testing.T, dir string, git func(args ...string) string, steps []versionStep) []string {
	t.Helper()
	var versions []string
	for _, s := range steps {
		s.do()
		got := strings.TrimSpace(string(run(t, dir, nil, "packaging/version")))
		want := strings.ReplaceAll(s.want, "%h", git("rev-parse", "--short=8", "HEAD"))
		if got != want {
			t.Errorf("after %s: version %q, want %q", git("log", "-1", "--format=%s"), got, want)
		}
		versions = append(versions, got)
	}
	return versions
}
