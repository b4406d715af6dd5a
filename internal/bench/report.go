package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Begin and End mark the generated part of docs/benchmarks.md.
const (
	Begin = "<!-- make bench: begin (generated, do not edit) -->"
	End   = "<!-- make bench: end -->"
)

// Targets of issue 6.
const (
	targetShell = 0.8
	targetFloor = 1.3
	targetScale = 1.2
)

// Markdown writes the results; plot names the PNG of the scale figures,
// relative to the document, or is empty.
func (r *Results) Markdown(w io.Writer, plot string) {
	m := r.Machine
	fmt.Fprintf(w, "Measured %s on %s, %d cores, kernel %s, %s, %s; helpers built with %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), m.CPU, m.Cores, m.Kernel, m.OS, "as root", m.Go)
	if r.Version != "" {
		fmt.Fprintf(w, "Helpers: %s. ", r.Version)
	}
	fmt.Fprintf(w, "The helpers' run directory (their per-tap locks) was on %s.\n\n", r.RunDirFS)

	fmt.Fprintf(w, "### One ifup + ifdown pair on a fresh tap\n\n")
	fmt.Fprintf(w, "%d pairs each, interleaved in random order with the other variants and scales. "+
		"Wall time from the start of ifup to the exit of ifdown, in ms.\n\n", r.Rounds)
	fmt.Fprintf(w, "| pair | median | p10 – p90 | ours ÷ this | CPU | ours ÷ this (CPU) | page faults |\n|---|--:|--:|--:|--:|--:|--:|\n")
	ours := r.Pair[oursName].Median
	oursCPU := r.CPU[oursName].Median
	for _, v := range r.Variants {
		s := r.Pair[v]
		pf, cpu, cpuRatio := "–", "–", "–"
		if f, ok := r.Faults[v]; ok {
			pf = fmt.Sprintf("%.0f", f.Median)
		}
		if c, ok := r.CPU[v]; ok && c.Median > 0 {
			cpu = fmt.Sprintf("%.2f", c.Median)
			cpuRatio = fmt.Sprintf("%.2f", oursCPU/c.Median)
		}
		fmt.Fprintf(w, "| %s | %.2f | %.2f – %.2f | %.2f | %s | %s | %s |\n", v, s.Median, s.P10, s.P90, ours/s.Median, cpu, cpuRatio, pf)
	}
	fmt.Fprintf(w, "\nCPU: user and system time of the two processes (with a script's tools), in ms, median; "+
		"unlike wall time it does not count waiting for a CPU other jobs hold. "+
		"Page faults: minor faults of the same, median.\n")
	rs, rf := ours/r.Pair[shellName].Median, ours/r.Pair[floorName].Median
	fmt.Fprintf(w, "\nOurs against the shell pair: **%.2fx** (target ≤ %.1fx, %s). "+
		"Ours against the floor: **%.2fx** (target ≤ %.1fx, %s).\n\n",
		rs, targetShell, met(rs <= targetShell), rf, targetFloor, met(rf <= targetFloor))

	fmt.Fprintf(w, "### Scale\n\nThe same pair with more interfaces in the namespace (veth pairs; a quarter of the interfaces are ports of virbr0).\n\n")
	fmt.Fprintf(w, "| interfaces | ports on virbr0 | ours: median (p10 – p90) | shell: median (p10 – p90) | in-process changes: median |\n|--:|--:|--:|--:|--:|\n")
	for _, s := range r.Scales {
		o, sh, in := s.Pair[oursName], s.Pair[shellName], s.Pair[inProcName]
		fmt.Fprintf(w, "| %d | %d | %.2f (%.2f – %.2f) | %.2f (%.2f – %.2f) | %.2f |\n",
			s.Links, s.Ports, o.Median, o.P10, o.P90, sh.Median, sh.P10, sh.P90, in.Median)
	}
	if len(r.Scales) > 1 {
		first, last := r.Scales[0], r.Scales[len(r.Scales)-1]
		ro := last.Pair[oursName].Median / first.Pair[oursName].Median
		rsh := last.Pair[shellName].Median / first.Pair[shellName].Median
		med := func(s Scale, v string) float64 { return s.Pair[v].Median }
		fmt.Fprintf(w, "\n%d interfaces against %d: ours **%.2fx** (target ≤ %.1fx, %s), the shell pair %.2fx. "+
			"In absolute terms ours grows by %.2f ms, the shell pair by %.2f ms, and the same changes made in-process "+
			"(no process at all) by %.2f ms: the growth is the kernel's.\n",
			last.Links, first.Links, ro, targetScale, met(ro <= targetScale), rsh,
			med(last, oursName)-med(first, oursName), med(last, shellName)-med(first, shellName),
			med(last, inProcName)-med(first, inProcName))
	}
	if plot != "" {
		fmt.Fprintf(w, "\n![pair time against interfaces in the namespace](%s)\n", plot)
	}

	fmt.Fprintf(w, "\n### Load\n\nProcesses started at once (released together from as many threads) on as many fresh taps of one bridge; "+
		"every tap is checked to be an up port afterwards (detached after ifdown). Wall time until the last exit, in ms.\n\n")
	fmt.Fprintf(w, "| what | processes | all succeeded | median | min – max | rounds |\n|---|--:|---|--:|--:|--:|\n")
	for _, l := range r.Load {
		fmt.Fprintf(w, "| %s | %d | yes | %.1f | %.1f – %.1f | %d |\n", l.What, l.N, l.Wall.Median, l.Wall.Min, l.Wall.Max, l.Wall.N)
	}

	fmt.Fprintf(w, "\n### Size and peak memory\n\nPeak memory is VmHWM, read from /proc as each program exits (stopped there with ptrace), on a fresh tap, %d runs each. "+
		"A script's tools are measured on their own.\n\n", r.Memory[0].HWM.N)
	fmt.Fprintf(w, "| program | size | peak RSS median | max |\n|---|--:|--:|--:|\n")
	for _, p := range r.Memory {
		size := "(script)"
		if p.Size > 0 {
			size = fmt.Sprintf("%.2f MiB", float64(p.Size)/(1<<20))
		}
		fmt.Fprintf(w, "| %s | %s | %.2f MiB | %.2f MiB |\n", p.Name, size, p.HWM.Median/1024, p.HWM.Max/1024)
	}
	fmt.Fprintf(w, "\nThe whole run took %v.\n", r.Took.Round(time.Second))
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// Plot draws the scale figures into png with gnuplot.
func (r *Results) Plot(png string) error {
	var data bytes.Buffer
	for _, s := range r.Scales {
		o, sh, in := s.Pair[oursName], s.Pair[shellName], s.Pair[inProcName]
		fmt.Fprintf(&data, "%d %f %f %f %f %f %f %f %f %f\n", s.Links, o.Median, o.P25, o.P75,
			sh.Median, sh.P25, sh.P75, in.Median, in.P25, in.P75)
	}
	return Gnuplot(data.Bytes(), func(dat string) string {
		return fmt.Sprintf(`set terminal pngcairo size 720,420 font "sans,10"
set output %q
set title "One ifup + ifdown pair against interfaces in the namespace"
set xlabel "interfaces in the namespace (a quarter of them ports of virbr0)"
set ylabel "ms per pair (median; bars: p25 - p75)"
set yrange [0:*]
set xrange [-150:4150]
set grid
set key at graph 0.02, graph 0.36 left top box opaque
floor = %f
plot %q using 1:5:6:7 with yerrorlines lw 2 pt 7 title "classic shell pair (ifconfig + brctl)", \
     %q using 1:2:3:4 with yerrorlines lw 2 pt 5 title "qemu-ifup + qemu-ifdown", \
     floor with lines dt 2 lw 2 title "empty Go pair (floor, at 10 interfaces)", \
     %q using 1:8:9:10 with yerrorlines lw 2 pt 9 title "the same changes in-process (the kernel's share)"
`, png, r.Pair[floorName].Median, dat, dat, dat)
	})
}

// Gnuplot writes data to a temporary file and runs gnuplot on the script
// that script makes of that file's path.
func Gnuplot(data []byte, script func(dat string) string) error {
	dir, err := os.MkdirTemp("", "qth-plot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dat := filepath.Join(dir, "plot.dat")
	if err := os.WriteFile(dat, data, 0o644); err != nil {
		return err
	}
	cmd := exec.Command("gnuplot")
	cmd.Stdin = strings.NewReader(script(dat))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %v: %s", err, out)
	}
	return nil
}

// Report is what Write needs of a bench's results.
type Report interface {
	Plot(png string) error
	Markdown(w io.Writer, plot string)
}

// Write draws res's plot into plot (none when empty), prints its Markdown
// on stdout and puts it into doc between begin and end (none when doc is
// empty).
func Write(res Report, plot, doc, begin, end string) error {
	rel := ""
	if plot != "" {
		if err := res.Plot(plot); err != nil {
			return err
		}
		rel = filepath.Base(plot)
	}
	var md bytes.Buffer
	res.Markdown(&md, rel)
	os.Stdout.Write(md.Bytes())
	if doc != "" {
		return SpliceMarked(doc, begin, end, md.Bytes())
	}
	return nil
}

// SpliceMarked replaces what lies between the lines begin and end of the
// document at path with gen, or appends the marked block when the markers
// are not there yet; the rest of the document is kept.
func SpliceMarked(path, begin, end string, gen []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := append([]byte(begin+"\n\n"), gen...)
	block = append(block, []byte("\n"+end)...)
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i >= 0 && j > i {
		doc = append(doc[:i:i], append(block, doc[j+len(end):]...)...)
	} else {
		doc = append(doc, append(block, '\n')...)
	}
	return os.WriteFile(path, doc, 0o644)
}
