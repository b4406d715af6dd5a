package rtbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// TestMain removes the binaries nstest.Binaries built.
func TestMain(m *testing.M) { os.Exit(nstest.Main(m)) }

// statLine is a /proc/PID/task/TID/stat line as the kernel writes it, with
// the command name, the processor (field 39) and the rest zero.
func statLine(tid int, comm string, processor int) string {
	f := make([]string, 52-2)
	for i := range f {
		f[i] = "0"
	}
	f[0] = "S"
	f[39-3] = fmt.Sprint(processor)
	return fmt.Sprintf("%d (%s) %s\n", tid, comm, strings.Join(f, " "))
}

// writeThread writes the files of one thread under proc.
func writeThread(t *testing.T, proc string, pid, tid int, comm string, processor int, cpuNs, rqNs, invol int64) {
	t.Helper()
	dir := filepath.Join(proc, fmt.Sprint(pid), "task", fmt.Sprint(tid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"schedstat": fmt.Sprintf("%d %d 42\n", cpuNs, rqNs),
		"stat":      statLine(tid, comm, processor),
		"status":    fmt.Sprintf("Name:\t%s\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t%d\n", comm, invol),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A window over a sample /proc tree: the main thread, two vCPUs, a worker
// that exits inside the window and one that starts inside it.
func TestTracker(t *testing.T) {
	proc := t.TempDir()
	const pid = 100
	writeThread(t, proc, pid, 100, "qemu-system-x86", 0, 1e9, 2e9, 10)
	writeThread(t, proc, pid, 101, "CPU 0/TCG", 0, 5e9, 1e9, 3)
	writeThread(t, proc, pid, 102, "CPU 1/TCG", 1, 7e9, 3e9, 5)
	writeThread(t, proc, pid, 103, "worker", 0, 1e8, 1e8, 1)
	tr, err := NewTracker(proc, pid)
	if err != nil {
		t.Fatal(err)
	}
	// The main loop and vCPU 1 move; the first worker works, then exits;
	// a second starts.
	writeThread(t, proc, pid, 100, "qemu-system-x86", 1, 1.5e9, 4e9, 30)
	writeThread(t, proc, pid, 102, "CPU 1/TCG", 0, 9e9, 3.5e9, 5)
	writeThread(t, proc, pid, 103, "worker", 1, 3e8, 2e8, 2)
	tr.Sample()
	if err := os.RemoveAll(filepath.Join(proc, fmt.Sprint(pid), "task", "103")); err != nil {
		t.Fatal(err)
	}
	writeThread(t, proc, pid, 104, "worker", 1, 1e8, 5e7, 4)
	writeThread(t, proc, pid, 101, "CPU 0/TCG", 0, 6e9, 1.25e9, 4)
	tr.Sample()

	want := map[string]Use{
		MainLoop:    {Threads: 1, CPUTime: 500 * time.Millisecond, RunQueue: 2 * time.Second, Involuntary: 20, CPUs: []int{0, 1}},
		"CPU 0/TCG": {Threads: 1, CPUTime: time.Second, RunQueue: 250 * time.Millisecond, Involuntary: 1, CPUs: []int{0}},
		"CPU 1/TCG": {Threads: 1, CPUTime: 2 * time.Second, RunQueue: 500 * time.Millisecond, CPUs: []int{0, 1}},
		"worker":    {Threads: 2, CPUTime: 300 * time.Millisecond, RunQueue: 150 * time.Millisecond, Involuntary: 5, CPUs: []int{0, 1}},
	}
	if diff := cmp.Diff(want, tr.Uses()); diff != "" {
		t.Errorf("Uses (-want +got):\n%s", diff)
	}
}

func TestReadThreadErrors(t *testing.T) {
	proc := t.TempDir()
	writeThread(t, proc, 1, 1, "x", 0, 1, 1, 1)
	dir := filepath.Join(proc, "1", "task", "1")
	for _, tc := range []struct{ file, data, want string }{
		{"schedstat", "12\n", "schedstat: 1 fields"},
		{"schedstat", "a b c\n", "schedstat: \"a b c\""},
		{"stat", "1 (x) S 0 0\n", "fields, want at least 39"},
		{"status", "Name:\tx\n", "no nonvoluntary_ctxt_switches line"},
	} {
		t.Run(tc.file+" "+tc.want, func(t *testing.T) {
			writeThread(t, proc, 1, 1, "x", 0, 1, 1, 1)
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadThread(proc, 1, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadThread = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestHist(t *testing.T) {
	var h Hist
	// As the guest's init reports them: leading zeros, decimal.
	for _, r := range []string{
		"cyclictest start cpu 1 seconds 60", "cyclictest end",
		"cyclictest hist 000010 000090", "cyclictest hist 000080 000009", "cyclictest hist 003540 000001",
		"cyclictest max 03540", "cyclictest overflows 00000", "cyclictest done", "ready",
	} {
		if err := h.Add(r); err != nil {
			t.Fatalf("Add(%q): %v", r, err)
		}
	}
	for _, tc := range []struct {
		p    float64
		want int
	}{{0.5, 10}, {0.9, 10}, {0.95, 80}, {0.99, 80}, {0.999, 3540}, {1, 3540}} {
		if got := h.Percentile(tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if h.Samples() != 100 || h.Max != 3540 {
		t.Errorf("Samples %d, Max %d, want 100 and 3540", h.Samples(), h.Max)
	}
	// Beyond the histogram.
	if err := h.Add("cyclictest overflows 2"); err != nil {
		t.Fatal(err)
	}
	if got := h.Percentile(0.999); got != -1 {
		t.Errorf("Percentile(0.999) with overflows = %d, want -1", got)
	}
	if err := h.Add("cyclictest hist 12 x"); err == nil {
		t.Error("Add of a bad count: no error")
	}
	var empty Hist
	if got := empty.Percentile(0.5); got != -1 {
		t.Errorf("empty Percentile = %d, want -1", got)
	}
}

// sample results: (a) waits far longer on vCPU 1 than (b) and (c).
func sample() *Results {
	res := &Results{Cfg: Config{Housekeeping: 0, RT: 1, Duration: time.Minute, Reps: 2, Sample: 100 * time.Millisecond,
		QEMU: "qemu-system-x86_64", Launcher: "/x/qemu-launch", Taskset: "taskset", Kernel: "/k", Initrd: "/i"},
		Stress: []string{"stress-ng", "--cpu", "2", "--quiet"}, LoadAvg: [2]string{"1 1 1", "2 2 2"}, Took: 10 * time.Minute}
	for rep := range 2 {
		for i, w := range Ways {
			rq := time.Duration(6-3*min(i, 1)) * time.Second / time.Duration(1+rep)
			tr := Trial{Way: w.Key, Rep: rep, Window: time.Minute, Uses: map[string]Use{
				"CPU 1/TCG": {Threads: 1, RunQueue: rq, CPUTime: 10 * time.Second, Involuntary: 100, CPUs: []int{1}},
				MainLoop:    {Threads: 1, RunQueue: time.Second, CPUTime: 2 * time.Second, CPUs: []int{0, 1}},
				"worker":    {Threads: 3},
			}}
			for _, r := range []string{"cyclictest hist 10 99", "cyclictest hist 900 1", "cyclictest max 900"} {
				tr.Hist.Add(r)
			}
			res.Trials = append(res.Trials, tr)
		}
	}
	return res
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	sample().Markdown(&b, "rt.png")
	md := b.String()
	for _, w := range []string{
		"| CPU 1/TCG | 4.50 (3.00 – 6.00) | 2.25 (1.50 – 3.00) | 2.25 (1.50 – 3.00) |",
		"| main loop | 1.00 (1.00 – 1.00) |",
		"| (a) | CPU 1/TCG | 10.00 (10.00 – 10.00) | 100 (100 – 100) | 1 |",
		"| (c) qemu-launch -vcpu --emulator-cpus | 200 | 10 (10 – 10) | 10 (10 – 10) | 900 (900 – 900) | 900 (900 – 900) |",
		"(a)'s range does **not** separate from (b)'s and (c)'s",
		"![run-queue delay per thread and way](rt.png)",
		"- (b) qemu-launch -vcpu: `qemu-launch --cpus 0-1 -- qemu-system-x86_64 -accel tcg,thread=multi",
		"-vcpu 0,affinity=0x1,prio=0 -vcpu 1,affinity=0x2,prio=80 -kernel … -initrd … -append …`",
		"do not reflect the placement",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("report lacks %q:\n%s", w, md)
		}
	}
}

// The raw results survive a save and a load (bench/rt -save, -load).
func TestResultsJSON(t *testing.T) {
	res := sample()
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	res.Markdown(&a, "")
	back.Markdown(&b, "")
	if diff := cmp.Diff(a.String(), b.String()); diff != "" {
		t.Errorf("report after a JSON round trip (-before +after):\n%s", diff)
	}
}

// The smoke run of make test: every way once for a few seconds, under
// stress-ng, on this machine's first two CPUs. It asserts only that the
// report and its plot are produced: under a loaded CI host no figure is
// reliable.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("boots three guests")
	}
	nstest.RequireRoot(t)
	for _, tool := range [][2]string{{"qemu-system-x86_64", "qemu-system-x86"}, {"stress-ng", "stress-ng"},
		{"cyclictest", "rt-tests"}, {"gnuplot", "gnuplot-nox"}, {"taskset", "util-linux"}} {
		nstest.RequireTool(t, tool[0], tool[1])
	}
	var log bytes.Buffer
	g, err := guest.BuildRT(&log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	online := twoCPUs(t)
	c := Config{
		QEMU: "qemu-system-x86_64", Launcher: filepath.Join(nstest.Binaries(t), "qemu-launch"), Taskset: "taskset", Stress: "stress-ng",
		Kernel: g.Kernel, Initrd: g.Initrd, Housekeeping: online[0], RT: online[1],
		Duration: 2 * time.Second, Reps: 1, Log: &testLog{t},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := Run(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "rt.png")
	if err := res.Plot(png); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() == 0 {
		t.Errorf("no plot: %v", err)
	}
	var b bytes.Buffer
	res.Markdown(&b, "rt.png")
	t.Logf("report:\n%s", b.String())
	for _, w := range []string{"| CPU 1/TCG |", "| main loop |", "| (c) | CPU 0/TCG |", "| (a) taskset |"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("report lacks %q", w)
		}
	}
	if len(res.Trials) != len(Ways) {
		t.Errorf("%d trials, want %d", len(res.Trials), len(Ways))
	}
}

// twoCPUs are the first two CPUs this test may run on.
func twoCPUs(t *testing.T) [2]int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			for _, part := range strings.Split(strings.TrimSpace(v), ",") {
				var lo, hi int
				if n, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); n == 2 {
					for c := lo; c <= hi; c++ {
						cpus = append(cpus, c)
					}
				} else if n == 1 {
					cpus = append(cpus, lo)
				}
			}
		}
	}
	if len(cpus) < 2 {
		t.Fatalf("the smoke run needs two CPUs; this test may run on %v", cpus)
	}
	return [2]int{cpus[0], cpus[1]}
}

// testLog passes the benchmark's progress to the test log.
type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
