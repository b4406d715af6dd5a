// Command imports links the packages the helpers link from outside the
// project, runs their package initialisation and does nothing else: between
// the empty program and the helpers, it shows what the libraries alone cost
// at start-up.
package main

import (
	_ "fmt"

	_ "github.com/coreos/go-systemd/v22/unit"
	_ "github.com/vishvananda/netlink/nl"
	_ "golang.org/x/sys/unix"
)

func main() {}
