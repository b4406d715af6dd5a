// Command qemu-ifup is the script QEMU runs for -netdev tap,script=: it makes
// the tap named by its only argument a port of its bridge.
package main

import (
	"os"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifscript"
)

func main() {
	os.Exit(ifscript.Up().Main(os.Args[1:], ifscript.OS()))
}
