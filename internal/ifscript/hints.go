package ifscript

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bridgelist"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
)

// privilegeHint follows an EPERM from the kernel: what the helper lacks.
const privilegeHint = " (changing a tap needs root or CAP_NET_ADMIN: run QEMU as root or through qemu-launch, " +
	"or let the bridge helper make the tap with -netdev bridge,br=BRIDGE,helper=.../qemu-bridge-helper)"

// withHint adds to err what the user can do about it, where the error
// alone does not say: the privilege a refused change needs, and the
// bridges that exist when the one asked for does not.
func withHint(err error) error {
	var missing *bridge.NotFoundError
	switch {
	case errors.Is(err, unix.EPERM) && !strings.Contains(err.Error(), "CAP_NET_ADMIN"):
		return fmt.Errorf("%w%s", err, privilegeHint)
	case errors.As(err, &missing):
		return fmt.Errorf("%w (%s)", err, bridgelist.HintHere())
	}
	return err
}

// downHint is what to do about a bridge that is down.
func downHint(br string) string {
	return fmt.Sprintf("start it with: ip link set %s up", br)
}
