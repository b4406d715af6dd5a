// Command progress runs go test -json and shows make test's progress: one
// line per test and package as each finishes, and the total time.
//
//	go run ./test/progress [-v] -- go test -json ./...
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/testprogress"
)

func main() {
	verbose := flag.Bool("v", false, "pass go test -v's whole output through")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: progress [-v] -- go test -json [ARGS...]")
		os.Exit(2)
	}
	os.Exit(testprogress.Run(flag.Args(), os.Stdout, os.Stderr, *verbose))
}
