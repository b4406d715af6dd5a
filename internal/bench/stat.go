package bench

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A Stat summarises samples: the median and, for the spread, the 10th and
// 90th percentiles. Durations are in milliseconds, memory in KiB.
type Stat struct {
	N                int
	Median, P10, P90 float64
	P25, P75         float64
	Min, Max         float64
}

func stat(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(p float64) float64 {
		// Linear interpolation between closest ranks.
		pos := p * float64(len(s)-1)
		i := int(pos)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (pos-float64(i))*(s[i+1]-s[i])
	}
	return Stat{N: len(s), Median: q(0.5), P10: q(0.1), P90: q(0.9), P25: q(0.25), P75: q(0.75), Min: s[0], Max: s[len(s)-1]}
}

func durStat(ds []time.Duration) Stat {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / float64(time.Millisecond)
	}
	return stat(xs)
}

func intStat(ns []int64) Stat {
	xs := make([]float64, len(ns))
	for i, n := range ns {
		xs[i] = float64(n)
	}
	return stat(xs)
}

// A Machine is where the figures came from.
type Machine struct {
	CPU    string
	Cores  int
	Kernel string
	Go     string
	OS     string
}

// ThisMachine describes the machine the process runs on.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	// The helpers are built by the go on PATH, which may differ from the
	// one that built this program.
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	return m
}

// Summarize is the Stat of xs (empty: the zero Stat).
func Summarize(xs []float64) Stat { return stat(xs) }
