package ifscript

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// privilegeHint follows an EPERM from the kernel: what the helper lacks.
const privilegeHint = " (changing a tap needs root or CAP_NET_ADMIN: run QEMU as root or through qemu-launch, " +
	"or let the bridge helper make the tap with -netdev bridge,br=BRIDGE,helper=.../qemu-bridge-helper)"

// withHint adds to err what the user can do about it, where the error
// alone does not say: the privilege a refused change needs, and the
// bridges that exist when the one asked for does not.
func withHint(err error) error {
	switch {
	case errors.Is(err, unix.EPERM) && !strings.Contains(err.Error(), "CAP_NET_ADMIN"):
		return fmt.Errorf("%w%s", err, privilegeHint)
	case errors.Is(err, bridge.ErrNotFound):
		return fmt.Errorf("%w (%s)", err, existingBridges())
	}
	return err
}

// existingBridges names the Linux bridges of this network namespace, for
// the message about a bridge that is not found.
func existingBridges() string {
	c, err := link.Open()
	if err != nil {
		return "create it first"
	}
	defer c.Close()
	names, err := c.NamesOfKind("bridge")
	switch {
	case err != nil:
		return "create it first"
	case len(names) == 0:
		return "there is no Linux bridge in this network namespace: create one first, e.g. ip link add virbr0 type bridge; ip link set virbr0 up"
	}
	return "Linux bridges here: " + strings.Join(names, ", ")
}

// downHint is what to do about a bridge that is down.
func downHint(br string) string {
	return fmt.Sprintf("start it with: ip link set %s up", br)
}
