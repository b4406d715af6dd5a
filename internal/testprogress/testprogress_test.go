package testprogress

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

const stream = `{"Action":"start","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a"}
{"Action":"run","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestOne"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestOne","Output":"=== RUN   TestOne\n"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestOne","Output":"--- PASS: TestOne (0.50s)\n"}
{"Action":"pass","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestOne","Elapsed":0.5}
{"Action":"run","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestRoot"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestRoot","Output":"=== RUN   TestRoot\n"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestRoot","Output":"    a_test.go:9: needs root\n"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestRoot","Output":"--- SKIP: TestRoot (0.00s)\n"}
{"Action":"skip","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Test":"TestRoot","Elapsed":0}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Output":"ok  \tgithub.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a\t0.6s\n"}
{"Action":"pass","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a","Elapsed":0.6}
{"Action":"run","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b","Test":"TestBad"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b","Test":"TestBad","Output":"    b_test.go:3: got 1, want 2\n"}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.10s)\n"}
{"Action":"fail","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b","Test":"TestBad","Elapsed":0.1}
{"Action":"output","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b","Output":"FAIL\n"}
{"Action":"fail","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b","Elapsed":0.2}
{"Action":"skip","Package":"github.com/qemu-tap-helpers/qemu-tap-helpers/cmd/c"}
not json: a vet message
`

// ciSkip is the line .ci/run looks for to fail CI on a skipped test.
var ciSkip = regexp.MustCompile(`(?m)^\s*--- SKIP`)

func TestReporter(t *testing.T) {
	var out strings.Builder
	rep := New(&out, false, time.Now())
	if err := rep.Read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	c := rep.Summary()
	got := out.String()
	for _, want := range []string{
		"    ok    pkg/a TestOne (0.5s)\n",
		"    --- SKIP: TestRoot (0.0s) [pkg/a]\n        a_test.go:9: needs root\n",
		"ok    github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a (0.6s; ",
		"=== RUN   TestBad\n    b_test.go:3: got 1, want 2\n--- FAIL: TestBad (0.10s)\n",
		"FAIL  github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b (0.2s)\n",
		"?     github.com/qemu-tap-helpers/qemu-tap-helpers/cmd/c [no test files]\n",
		"not json: a vet message\n",
		"tests FAILED: github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/b: 3 packages, 1 tests passed, 1 failed, 1 skipped, in ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN   TestOne") {
		t.Errorf("a passing test's output was printed:\n%s", got)
	}
	if !ciSkip.MatchString(got) {
		t.Errorf("no line for CI's skip check (%s):\n%s", ciSkip, got)
	}
	if c.Passed != 1 || c.Failed != 1 || c.Skipped != 1 || c.Packages != 3 {
		t.Errorf("counts %+v", c)
	}
}

// Verbose mode is go test -v's output, whole: CI reads it.
func TestReporterVerbose(t *testing.T) {
	var out strings.Builder
	rep := New(&out, true, time.Now())
	if err := rep.Read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"=== RUN   TestOne\n--- PASS: TestOne (0.50s)\n",
		"    a_test.go:9: needs root\n--- SKIP: TestRoot (0.00s)\n",
		"ok  \tgithub.com/qemu-tap-helpers/qemu-tap-helpers/pkg/a\t0.6s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("verbose output lacks %q:\n%s", want, got)
		}
	}
	if !ciSkip.MatchString(got) {
		t.Errorf("no line for CI's skip check:\n%s", got)
	}
}

// Run passes the command's failure on, and a test's.
func TestRunStatus(t *testing.T) {
	var out, errb strings.Builder
	if code := Run([]string{"sh", "-c", "exit 3"}, &out, &errb, false); code != 3 {
		t.Errorf("Run(exit 3) = %d", code)
	}
	script := `printf '%s\n' '{"Action":"fail","Package":"p","Test":"TestX"}' '{"Action":"fail","Package":"p"}'`
	if code := Run([]string{"sh", "-c", script}, &out, &errb, false); code != 1 {
		t.Errorf("Run(a failed test, exit 0) = %d, want 1", code)
	}
	if code := Run([]string{"true"}, &out, &errb, false); code != 0 {
		t.Errorf("Run(true) = %d", code)
	}
}

// A package that times out never ends its running test: that test's
// output is printed with the package's failure.
func TestReporterTimeout(t *testing.T) {
	const timeout = `{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"    hang_test.go:5: waiting for the guest\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 1m0s\n"}
{"Action":"fail","Package":"p","Elapsed":60}
`
	var out strings.Builder
	rep := New(&out, false, time.Now())
	if err := rep.Read(strings.NewReader(timeout)); err != nil {
		t.Fatal(err)
	}
	want := "=== RUN   TestHang\n    hang_test.go:5: waiting for the guest\npanic: test timed out after 1m0s\nFAIL  p (60.0s)\n"
	if got := out.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}
