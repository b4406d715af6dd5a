// Command qemu-ifdown is the script QEMU runs for -netdev tap,downscript=:
// it takes the tap named by its only argument off its bridge.
package main

import (
	"os"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifscript"
)

func main() {
	os.Exit(ifscript.Down().Main(os.Args[1:], ifscript.OS()))
}
