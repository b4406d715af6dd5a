// Command qemu-bridge-helper is a drop-in for QEMU's bridge helper: QEMU
// runs it for -netdev bridge,helper= to get a tap on a bridge the ACL file
// allows, without running as root itself.
package main

import (
	"os"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bridgehelper"
)

func main() {
	os.Exit(bridgehelper.Main(os.Args[1:], bridgehelper.OS()))
}
