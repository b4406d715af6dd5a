// Command rt is make rt-bench: the same guest started three ways (taskset;
// qemu-launch with the seed's -vcpu options; and with --emulator-cpus)
// under stress-ng on every CPU, QEMU's threads measured from /proc. It
// prints the figures and writes them into docs/benchmarks.md. It needs
// root, stress-ng, gnuplot and the guest of test/guest/build rt
// (scripts/ensure-deps rt-bench).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bench"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rtbench"
)

// results runs the benchmark, or reads an earlier run's results.
func results(c rtbench.Config, load string) (*rtbench.Results, error) {
	if load != "" {
		data, err := os.ReadFile(load)
		if err != nil {
			return nil, err
		}
		var res rtbench.Results
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("%s: %w", load, err)
		}
		return &res, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root (SCHED_FIFO vCPUs, locked guest memory)")
	}
	// Ctrl-C stops the run in progress; its QEMU is killed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return rtbench.Run(ctx, c)
}

func main() {
	var c rtbench.Config
	flag.StringVar(&c.QEMU, "qemu", "qemu-system-x86_64", "the QEMU binary")
	flag.StringVar(&c.Launcher, "launcher", "bin/qemu-launch", "qemu-launch, as make build builds it")
	flag.StringVar(&c.Taskset, "taskset", "taskset", "taskset, for way (a)")
	flag.StringVar(&c.Stress, "stress", "stress-ng", "stress-ng, the host load")
	guest := flag.String("guest", ".cache/guest", "directory of the guest's vmlinuz and initrd-rt.gz (test/guest/build rt)")
	flag.IntVar(&c.Housekeeping, "housekeeping-cpu", 0, "host CPU of vCPU 0 and, in (c), of QEMU's other threads (the seed's CPU 2)")
	flag.IntVar(&c.RT, "rt-cpu", 1, "host CPU of the SCHED_FIFO vCPU 1 (the seed's CPU 3)")
	flag.DurationVar(&c.Duration, "duration", 60*time.Second, "length of each run (cyclictest in the guest)")
	flag.IntVar(&c.Reps, "reps", 3, "runs per way, interleaved")
	flag.DurationVar(&c.Sample, "sample", 100*time.Millisecond, "how often the CPU each thread is on is sampled")
	doc := flag.String("doc", "", "markdown file to write the figures into (between its rt-bench markers)")
	plot := flag.String("plot", "", "PNG to draw the run-queue delays into (next to -doc)")
	save := flag.String("save", "", "JSON file to keep the raw results in")
	load := flag.String("load", "", "JSON file of an earlier run's raw results (-save) to report instead of running")
	flag.Parse()
	c.Kernel = filepath.Join(*guest, "vmlinuz")
	c.Initrd = filepath.Join(*guest, "initrd-rt.gz")
	c.Log = os.Stderr
	if err := run(c, *load, *save, *doc, *plot); err != nil {
		fmt.Fprintln(os.Stderr, "rt-bench:", err)
		os.Exit(1)
	}
}

func run(c rtbench.Config, load, save, doc, plot string) error {
	res, err := results(c, load)
	if err != nil {
		return err
	}
	if save != "" {
		data, err := json.MarshalIndent(res, "", "\t")
		if err != nil {
			return err
		}
		if err := os.WriteFile(save, data, 0o644); err != nil {
			return err
		}
	}
	return bench.Write(res, plot, doc, rtbench.Begin, rtbench.End)
}
