package link_test

import (
	"slices"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

func TestNamesOfKind(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br-b", 0)
	ns.AddBridge(t, "br-a", 0)
	ns.AddTap(t, "tap0")
	var got []string
	err := ns.Do(func() error {
		c, err := link.Open()
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = c.NamesOfKind("bridge")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"br-a", "br-b"}; !slices.Equal(got, want) {
		t.Errorf("NamesOfKind(bridge) = %q, want %q", got, want)
	}
}
