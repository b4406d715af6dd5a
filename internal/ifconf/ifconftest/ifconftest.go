// Package ifconftest builds port settings for tests.
package ifconftest

import (
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
)

// Settings builds the settings KEY=VALUE pairs give, as a file would,
// each given at "test".
func Settings(t testing.TB, kvs ...string) ifconf.Settings {
	t.Helper()
	var s ifconf.Settings
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if err := s.SetNamed(k, v, ifconf.Origin{File: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
