package rtbench

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bench"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/shellwords"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// Begin and End mark make rt-bench's part of docs/benchmarks.md.
const (
	Begin = "<!-- make rt-bench: begin (generated, do not edit) -->"
	End   = "<!-- make rt-bench: end -->"
)

// groups are the thread names of the report, in its order: the vCPUs,
// the main loop, then the others QEMU starts (debug-threads=on names).
func (r *Results) groups() []string {
	names := map[string]bool{}
	for _, t := range r.Trials {
		for n := range t.Uses {
			names[n] = true
		}
	}
	first := []string{vcpuName(rtVCPU), vcpuName(0), MainLoop}
	var out []string
	for _, n := range first {
		if names[n] {
			out = append(out, n)
			delete(names, n)
		}
	}
	return append(out, slices.Sorted(maps.Keys(names))...)
}

// perMinute is what one trial's threads of a name did, per minute of the
// window.
func (t Trial) perMinute(name string, f func(Use) float64) float64 {
	if t.Window <= 0 {
		return 0
	}
	return f(t.Uses[name]) / t.Window.Minutes()
}

// across summarises one figure over the trials of a way.
func (r *Results) across(way, name string, f func(Use) float64) bench.Stat {
	var xs []float64
	for _, t := range r.Trials {
		if t.Way == way {
			xs = append(xs, t.perMinute(name, f))
		}
	}
	return bench.Summarize(xs)
}

func runQueue(u Use) float64 { return u.RunQueue.Seconds() }
func cpuTime(u Use) float64  { return u.CPUTime.Seconds() }
func switches(u Use) float64 { return float64(u.Involuntary) }

// cpusOf is every CPU the threads of a name were seen on, over a way's trials.
func (r *Results) cpusOf(way, name string) cpuset.Set {
	var s cpuset.Set
	for _, t := range r.Trials {
		if t.Way == way {
			for _, c := range t.Uses[name].CPUs {
				s.Add(c)
			}
		}
	}
	return s
}

func spread(s bench.Stat, format string) string {
	if s.N <= 1 {
		return fmt.Sprintf(format, s.Median)
	}
	return fmt.Sprintf(format+" ("+format+" – "+format+")", s.Median, s.Min, s.Max)
}

// Markdown writes the report; plot names the PNG of the run-queue delays,
// relative to the document, or is empty.
func (r *Results) Markdown(w io.Writer, plot string) {
	c, m := r.Cfg, r.Machine
	fmt.Fprintf(w, "Measured %s on %s, %d cores, kernel %s, %s, as root; %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), m.CPU, m.Cores, m.Kernel, m.OS, r.QEMU)
	fmt.Fprintf(w, "Accelerator: TCG (`-accel tcg,thread=multi`), one host thread per vCPU; KVM is not usable on this machine. "+
		"Run length: cyclictest's %v in the guest, the window over which the host's counters are taken; "+
		"%d repetition(s) per way, interleaved (a b c, b c a, c a b, ...), the whole run %v. "+
		"Host load: `%s` (a SCHED_OTHER CPU hog per CPU) for the whole run; "+
		"other jobs shared the machine too (load average %s at the start, %s at the end).\n\n",
		c.Duration, c.Reps, r.Took.Round(time.Second), shellwords.Join(r.Stress), r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(w, "The seed's host CPUs 2 and 3 are CPUs %d and %d here: vCPU 0 (SCHED_OTHER) and, in (c), QEMU's other threads on CPU %d; "+
		"vCPU %d (SCHED_FIFO %d in (b) and (c)) on CPU %d. The guest (test/guest/build rt) has 2 vCPUs and 256 MiB, locked.\n\n",
		c.Housekeeping, c.RT, c.Housekeeping, rtVCPU, rtPrio, c.RT)
	for _, way := range Ways {
		fmt.Fprintf(w, "- (%s) %s: `%s`\n", way.Key, way.Label, shortCommand(c.Command(way)))
	}

	fmt.Fprintf(w, "\n### Run-queue delay per QEMU thread\n\n"+
		"Time runnable but waiting for a CPU (field 2 of /proc/PID/task/TID/schedstat), in seconds per minute of run: "+
		"median (min – max) over the repetitions. Threads of one name (QEMU's thread pool, \"worker\") are summed.\n\n")
	groups := r.groups()
	fmt.Fprintf(w, "| thread |")
	for _, way := range Ways {
		fmt.Fprintf(w, " (%s) %s |", way.Key, way.Label)
	}
	fmt.Fprintf(w, "\n|---|")
	for range Ways {
		fmt.Fprintf(w, "--:|")
	}
	fmt.Fprintln(w)
	for _, g := range groups {
		fmt.Fprintf(w, "| %s |", g)
		for _, way := range Ways {
			fmt.Fprintf(w, " %s |", spread(r.across(way.Key, g, runQueue), "%.2f"))
		}
		fmt.Fprintln(w)
	}
	if plot != "" {
		fmt.Fprintf(w, "\n![run-queue delay per thread and way](%s)\n", plot)
	}
	fmt.Fprintf(w, "\n%s\n", r.verdict())

	fmt.Fprintf(w, "\n### CPU time, involuntary switches, CPUs\n\n"+
		"Per minute of run, median (min – max) over the repetitions: CPU time (field 1 of schedstat) in seconds, "+
		"involuntary context switches (nonvoluntary_ctxt_switches of status). CPUs: every CPU a thread of that name was seen on "+
		"(field 39 of stat, sampled every %v).\n\n", c.Sample)
	fmt.Fprintf(w, "| way | thread | CPU time | involuntary switches | CPUs |\n|---|---|--:|--:|---|\n")
	for _, way := range Ways {
		for _, g := range groups {
			fmt.Fprintf(w, "| (%s) | %s | %s | %s | %s |\n", way.Key, g,
				spread(r.across(way.Key, g, cpuTime), "%.2f"), spread(r.across(way.Key, g, switches), "%.0f"), r.cpusOf(way.Key, g))
		}
	}

	fmt.Fprintf(w, "\n### cyclictest in the guest (does not reflect placement under TCG)\n\n"+
		"**Under TCG these figures do not reflect the placement**: the guest's timer fires in QEMU's main loop, "+
		"which is SCHED_OTHER in every way, and a halted vCPU needs QEMU's global lock to wake. "+
		"On a host with usable KVM (an in-kernel hrtimer) they are the figure that matters. "+
		"`cyclictest -m -p %d -i 1000 -a %d` on vCPU %d, wake-up latency in µs: median (min – max) over the repetitions of each run's percentile.\n\n",
		rtPrio, rtVCPU, rtVCPU)
	fmt.Fprintf(w, "| way | samples | p50 | p99 | p99.9 | max |\n|---|--:|--:|--:|--:|--:|\n")
	for _, way := range Ways {
		var n float64
		pct := map[float64][]float64{}
		var mx []float64
		for _, t := range r.Trials {
			if t.Way != way.Key {
				continue
			}
			n += float64(t.Hist.Samples())
			for _, p := range []float64{0.5, 0.99, 0.999} {
				pct[p] = append(pct[p], float64(t.Hist.Percentile(p)))
			}
			mx = append(mx, float64(t.Hist.Max))
		}
		fmt.Fprintf(w, "| (%s) %s | %.0f | %s | %s | %s | %s |\n", way.Key, way.Label, n,
			spread(bench.Summarize(pct[0.5]), "%.0f"), spread(bench.Summarize(pct[0.99]), "%.0f"),
			spread(bench.Summarize(pct[0.999]), "%.0f"), spread(bench.Summarize(mx), "%.0f"))
	}
	fmt.Fprintf(w, "\n-1: beyond the histogram's %d ms.\n", 200)
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "\nqemu-launch said on stderr (each line once):\n\n")
		for _, l := range r.Warnings {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// verdict says whether the real-time vCPU's run-queue delay separates
// (a) from (b) and (c) beyond the run-to-run spread.
func (r *Results) verdict() string {
	v := vcpuName(rtVCPU)
	a, b, c := r.across("a", v, runQueue), r.across("b", v, runQueue), r.across("c", v, runQueue)
	ma, mb, mc := r.across("a", MainLoop, runQueue), r.across("b", MainLoop, runQueue), r.across("c", MainLoop, runQueue)
	sep := "does **not** separate from"
	switch {
	case min(a.N, b.N, c.N) < 2:
		sep = "(one run each: no run-to-run spread to compare) against"
	case a.Min > max(b.Max, c.Max):
		sep = "separates beyond the run-to-run spread from"
	}
	return fmt.Sprintf("vCPU %d (the SCHED_FIFO one in (b) and (c)) waited %.2f s per minute in (a), against %.2f in (b) and %.2f in (c) (medians); "+
		"(a)'s range %s (b)'s and (c)'s. The main loop waited %.2f s per minute in (a), %.2f in (b) and %.2f in (c).",
		rtVCPU, a.Median, b.Median, c.Median, sep, ma.Median, mb.Median, mc.Median)
}

// shortCommand is a way's command with the guest's files and kernel
// command line left out.
func shortCommand(argv []string) string {
	var out []string
	for i := 0; i < len(argv); i++ {
		switch argv[i] {
		case "-kernel", "-initrd", "-append":
			i++
			continue
		}
		a := argv[i]
		if i == 0 || strings.HasPrefix(a, "/") {
			a = filepath.Base(a)
		}
		out = append(out, a)
	}
	return shellwords.Join(out) + " -kernel … -initrd … -append …"
}

// Plot draws the run-queue delay per thread and way into png with gnuplot.
func (r *Results) Plot(png string) error {
	var data bytes.Buffer
	groups := r.groups()
	// Threads that never waited would be empty slots.
	waited := slices.DeleteFunc(slices.Clone(groups), func(g string) bool {
		return !slices.ContainsFunc(Ways, func(w Way) bool { return r.across(w.Key, g, runQueue).Max >= 0.01 })
	})
	if len(waited) > 0 {
		groups = waited
	}
	for _, g := range groups {
		fmt.Fprintf(&data, "%q", g)
		for _, way := range Ways {
			s := r.across(way.Key, g, runQueue)
			fmt.Fprintf(&data, " %f %f %f", s.Median, s.Min, s.Max)
		}
		data.WriteByte('\n')
	}
	return bench.Gnuplot(data.Bytes(), func(dat string) string {
		return fmt.Sprintf(`set terminal pngcairo size 760,420 font "sans,10"
set output %q
set title "QEMU threads' run-queue delay under stress-ng on every CPU (TCG, %v runs, %d each)"
set ylabel "s waiting per minute of run (median; bars: min - max)"
set yrange [0:*]
set grid ytics
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.9
set xtics noenhanced
set key top right
plot %q using 2:3:4:xtic(1) title "(a) taskset", \
     '' using 5:6:7 title "(b) qemu-launch -vcpu", \
     '' using 8:9:10 title "(c) (b) + --emulator-cpus"
`, png, r.Cfg.Duration, r.Cfg.Reps, dat)
	})
}
