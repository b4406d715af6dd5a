package launch

import (
	"os"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestMain removes the binaries nstest.Binaries built.
func TestMain(m *testing.M) { os.Exit(nstest.Main(m)) }
