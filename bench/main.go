// Command bench is make bench: it measures qemu-ifup and qemu-ifdown against
// the classic shell scripts and an empty Go program, in throwaway network
// namespaces, prints the figures and writes them into docs/benchmarks.md.
// It needs root, ifconfig, brctl and gnuplot (scripts/ensure-deps bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bench"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding qemu-ifup and qemu-ifdown as make build builds them")
	empty := flag.String("empty", "", "the empty static Go program (the floor)")
	imports := flag.String("imports", "", "the empty static Go program linking the helpers' libraries")
	rounds := flag.Int("rounds", 200, "pairs per variant and scale")
	scales := flag.String("scales", "10,500,1000,2000,4000", "interface counts in the namespaces; the first is the baseline")
	load := flag.Int("load", 128, "ifups started at once")
	loadRounds := flag.Int("load-rounds", 5, "load rounds")
	doc := flag.String("doc", "", "markdown file to write the figures into (between its markers)")
	plot := flag.String("plot", "", "PNG to draw the scale figures into (next to -doc)")
	rates := flag.String("rates", "", "instead of the rest: TCP through a port limited to each of these rates (1M,10M,100M), both ways")
	flag.Parse()
	if *rates != "" {
		if err := runRates(*rates, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *empty, *imports, *rounds, *scales, *load, *loadRounds, *doc, *plot); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err) // "context canceled" after Ctrl-C
		os.Exit(1)
	}
}

func run(bin, empty, imports string, rounds int, scales string, load, loadRounds int, doc, plot string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces, /dev/net/tun)")
	}
	cfg := bench.Config{
		Ifup: abs(filepath.Join(bin, "qemu-ifup")), Ifdown: abs(filepath.Join(bin, "qemu-ifdown")),
		Empty: abs(empty), Imports: abs(imports), Rounds: rounds, Load: load, LoadRounds: loadRounds, Log: os.Stderr,
	}
	for _, f := range strings.Split(scales, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 4 {
			return fmt.Errorf("bad -scales entry %q", f)
		}
		cfg.Scales = append(cfg.Scales, n)
	}
	dir, err := os.MkdirTemp("", "qth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Ctrl-C stops between two measurements; Run removes its namespaces.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg, dir)
	if err != nil {
		return err
	}
	return bench.Write(res, plot, doc, bench.Begin, bench.End)
}

// runRates measures the accuracy of the limits at each rate of list and
// prints a markdown table.
func runRates(list string, rounds int) error {
	var rs []uint64
	for _, f := range strings.Split(list, ",") {
		r, err := bridge.ParseRate(f)
		if err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
		rs = append(rs, r)
	}
	res, err := bench.Rates(rs, 4, rounds, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Println("| limit | bytes per transfer | to the guest (tbf), median [p10, p90] | from the guest (tbf on an ifb device), median [p10, p90] |")
	fmt.Println("|---|---|---|---|")
	for _, r := range res {
		pct := func(s bench.Stat) string {
			f := func(v float64) string { return strconv.FormatFloat(100*v/float64(r.Rate), 'f', 0, 64) + " %" }
			return f(s.Median) + " [" + f(s.P10) + ", " + f(s.P90) + "]"
		}
		fmt.Printf("| %s | %d | %s | %s |\n", bridge.FormatRate(r.Rate), r.Bytes, pct(r.To), pct(r.From))
	}
	return nil
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
