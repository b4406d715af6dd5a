// Package bridgelist names the Linux bridges of a network namespace for
// the message about a bridge that is not found, so that a misspelt name
// meets the right one: qemu-ifup, qemu-bridge-helper and qemu-launch say
// it the same way.
package bridgelist

import (
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// Hint says which Linux bridges exist in the namespace of c ("Linux
// bridges here: br0, virbr0"), or that there is none. It dumps every
// link, so it is for error paths only.
func Hint(c *link.Conn) string {
	names, err := c.NamesOfKind("bridge")
	switch {
	case err != nil:
		return "create it first"
	case len(names) == 0:
		return "there is no Linux bridge in this network namespace: create one first"
	}
	return "Linux bridges here: " + strings.Join(names, ", ")
}

// HintHere is Hint on a connection of its own.
func HintHere() string {
	c, err := link.Open()
	if err != nil {
		return "create it first"
	}
	defer c.Close()
	return Hint(c)
}
