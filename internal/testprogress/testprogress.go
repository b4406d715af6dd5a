// Package testprogress turns go test -json into what a person waiting for
// make test wants to see: one line per test and per package as each
// finishes, a failed test's output in full, and the total time at the
// end. Skipped tests keep go test's own "--- SKIP" line, which CI looks
// for; verbose mode prints go test -v's whole output instead, each
// package's as it ends.
package testprogress

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// An event is one line of go test -json (test2json's TestEvent).
type event struct {
	Action      string
	Package     string
	ImportPath  string // build-output events
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

// Counts are what a run saw.
type Counts struct {
	Packages, Passed, Failed, Skipped int
	FailedPackages                    []string
}

// A Reporter reads go test -json and writes the progress lines.
type Reporter struct {
	w       io.Writer
	verbose bool
	start   time.Time
	// out holds each running test's output, by package and test, until
	// the test ends: printed only for a failure.
	out    map[string]*strings.Builder
	counts Counts
}

// New returns a Reporter writing to w; verbose passes every output line
// through, as go test -v prints it.
func New(w io.Writer, verbose bool, start time.Time) *Reporter {
	return &Reporter{w: w, verbose: verbose, start: start, out: map[string]*strings.Builder{}}
}

// Read consumes go test -json from r until EOF. A line that is not JSON
// (go vet's, a build's) is passed through as it is.
func (rep *Reporter) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(rep.w, "%s\n", line)
			continue
		}
		rep.event(e)
	}
	return sc.Err()
}

func (rep *Reporter) event(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "build-output":
		io.WriteString(rep.w, e.Output)
	case "output":
		if rep.verbose {
			// A package's output whole, when it ends, as go test -v
			// prints packages run side by side.
			key = e.Package
		}
		b := rep.out[key]
		if b == nil {
			b = &strings.Builder{}
			rep.out[key] = b
		}
		b.WriteString(e.Output)
	case "pass", "fail", "skip":
		if rep.verbose && e.Test == "" {
			if b := rep.out[e.Package]; b != nil {
				io.WriteString(rep.w, b.String())
			}
			delete(rep.out, e.Package)
		}
		if e.Test == "" {
			rep.packageDone(e)
		} else {
			rep.testDone(e, key)
		}
	}
}

func (rep *Reporter) testDone(e event, key string) {
	out := rep.out[key]
	delete(rep.out, key)
	sub := strings.Contains(e.Test, "/")
	switch e.Action {
	case "pass":
		if !sub {
			rep.counts.Passed++
			if !rep.verbose {
				fmt.Fprintf(rep.w, "    ok    %s %s (%s)\n", short(e.Package), e.Test, seconds(e.Elapsed))
			}
		}
	case "skip":
		if !sub {
			rep.counts.Skipped++
		}
		if !rep.verbose {
			// go test -v's own line, which CI looks for, and the reason.
			fmt.Fprintf(rep.w, "    --- SKIP: %s (%s) [%s]\n", e.Test, seconds(e.Elapsed), short(e.Package))
			if out != nil {
				writeIndented(rep.w, reason(out.String()))
			}
		}
	case "fail":
		if !sub {
			rep.counts.Failed++
		}
		if !rep.verbose && out != nil {
			io.WriteString(rep.w, out.String())
		}
	}
}

func (rep *Reporter) packageDone(e event) {
	rep.counts.Packages++
	// Output outside any test: the package's own lines (a panic in
	// TestMain, a build failure, "ok" or "FAIL" lines in verbose mode).
	out := rep.out[e.Package+" "]
	delete(rep.out, e.Package+" ")
	switch e.Action {
	case "fail":
		rep.counts.FailedPackages = append(rep.counts.FailedPackages, e.Package)
		if !rep.verbose {
			// Tests that never ended (a timeout's panic, a crash):
			// their output says where they were.
			var open []string
			for key := range rep.out {
				if strings.HasPrefix(key, e.Package+" ") {
					open = append(open, key)
				}
			}
			sort.Strings(open)
			for _, key := range open {
				io.WriteString(rep.w, rep.out[key].String())
				delete(rep.out, key)
			}
			if out != nil {
				io.WriteString(rep.w, out.String())
			}
			fmt.Fprintf(rep.w, "FAIL  %s (%s)\n", e.Package, seconds(e.Elapsed))
		}
	case "skip":
		if !rep.verbose {
			fmt.Fprintf(rep.w, "?     %s [no test files]\n", e.Package)
		}
	default:
		if !rep.verbose {
			fmt.Fprintf(rep.w, "ok    %s (%s; %s so far)\n", e.Package, seconds(e.Elapsed), time.Since(rep.start).Round(time.Second))
		}
	}
}

// Summary writes the closing line and returns the counts.
func (rep *Reporter) Summary() Counts {
	// Output of packages that never ended (go test itself stopped).
	var left []string
	for key := range rep.out {
		left = append(left, key)
	}
	sort.Strings(left)
	for _, key := range left {
		io.WriteString(rep.w, rep.out[key].String())
	}
	c := rep.counts
	verdict := "passed"
	if c.Failed > 0 || len(c.FailedPackages) > 0 {
		verdict = "FAILED: " + strings.Join(c.FailedPackages, ", ")
	}
	fmt.Fprintf(rep.w, "tests %s: %d packages, %d tests passed, %d failed, %d skipped, in %s\n",
		verdict, c.Packages, c.Passed, c.Failed, c.Skipped, time.Since(rep.start).Round(time.Second))
	return c
}

// short is a package's path within the module.
func short(pkg string) string {
	const module = "github.com/qemu-tap-helpers/qemu-tap-helpers/"
	return strings.TrimPrefix(pkg, module)
}

func seconds(s float64) string { return fmt.Sprintf("%.1fs", s) }

// reason keeps a skipped test's own lines: not the "=== RUN" and
// "--- SKIP" framing go test adds.
func reason(out string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		keep = append(keep, t)
	}
	return strings.Join(keep, "\n")
}

func writeIndented(w io.Writer, s string) {
	if s == "" {
		return
	}
	for _, l := range strings.Split(s, "\n") {
		fmt.Fprintf(w, "        %s\n", l)
	}
}

// Run runs argv (go test -json ...), reports its output on w and returns
// the exit status: the command's own when it failed, 1 when a test or
// package failed, else 0. Its standard error passes through to errw.
func Run(argv []string, w, errw io.Writer, verbose bool) int {
	start := time.Now()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = errw
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(errw, "testprogress: %v\n", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(errw, "testprogress: %v\n", err)
		return 1
	}
	rep := New(w, verbose, start)
	readErr := rep.Read(stdout)
	waitErr := cmd.Wait()
	c := rep.Summary()
	switch {
	case readErr != nil:
		fmt.Fprintf(errw, "testprogress: reading %s: %v\n", argv[0], readErr)
		return 1
	case waitErr != nil:
		if code := cmd.ProcessState.ExitCode(); code > 0 {
			return code
		}
		return 1
	case c.Failed > 0 || len(c.FailedPackages) > 0:
		return 1
	}
	return 0
}
