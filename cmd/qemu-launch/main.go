// Command qemu-launch runs a QEMU virtual machine as its supervising
// parent: tap wiring through qemu-ifup/qemu-ifdown, CPU placement, vCPU
// pinning and real-time priorities on stock QEMU, and a clean shutdown.
package main

import (
	"context"
	"os"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/launch"
)

func main() {
	os.Exit(launch.Main(context.Background(), os.Args[1:]))
}
