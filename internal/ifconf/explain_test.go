package ifconf

import (
	"errors"
	"fmt"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// TestExplain: the library's errors about ports and bridges, said again
// with the keys a user writes; others unchanged.
func TestExplain(t *testing.T) {
	refused := func(e *bridge.SettingError) error { return fmt.Errorf("tap0: %w", e) }
	plain := errors.New("tap0: boom")
	tests := []struct {
		err  error
		want string
	}{
		{&tap.OtherBridgeError{Tap: "tap0", Bridge: "br0", Want: "br1"},
			"tap0: already a port of br0, not br1 (AllowMove=yes in the config moves it)"},
		{refused(&bridge.SettingError{Setting: bridge.SettingVLAN, Value: "10", Reason: "needs X"}), "tap0: VLAN=10 needs X"},
		{refused(&bridge.SettingError{Setting: bridge.SettingTrunks, Value: "10,20", Reason: "needs X"}), "tap0: Trunks=10,20 needs X"},
		{refused(&bridge.SettingError{Setting: bridge.SettingFlag, Flag: bridge.FlagUnicastFlood, Reason: "applies to Y"}), "tap0: UnicastFlood= applies to Y"},
		{plain, "tap0: boom"},
	}
	for _, tt := range tests {
		got := Explain("tap0", tt.err)
		if got.Error() != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("Explain(%v) = %v, want %q wrapping the error", tt.err, got, tt.want)
		}
	}
}
