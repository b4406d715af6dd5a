package ifscript

import (
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// Predict works out, changing nothing, the port qemu-ifup would make of
// the tap called ifname given rec (the settings of qemu-launch's record
// for it), on this host and with the environment getenv: the settings, as
// the config file, QEMU_BRIDGE and rec give them, and the tap's MTU. A
// launcher tells the guest's NIC that MTU before QEMU creates the tap.
func Predict(ifname string, rec ifconf.Settings, getenv func(string) string) (tap.Port, int, error) {
	env := ifconf.Env{Getenv: getenv}
	s, err := ifconf.ResolveConfig(ifname, env)
	if err != nil {
		return tap.Port{}, 0, err
	}
	if br := getenv(ifconf.EnvBridge); br != "" {
		if err := s.Set(ifconf.KeyBridge, br, ifconf.Origin{File: ifconf.EnvBridge}); err != nil {
			return tap.Port{}, 0, fmt.Errorf("%s: %w", ifconf.EnvBridge, err)
		}
	}
	s.Merge(rec)
	conn, err := link.Open()
	if err != nil {
		return tap.Port{}, 0, err
	}
	defer conn.Close()
	if s.Origin(ifconf.KeyBridge).IsDefault() {
		br, from, err := defaultBridge(conn, ifname)
		if err != nil {
			return tap.Port{}, 0, err
		}
		if err := s.Set(ifconf.KeyBridge, br, ifconf.Origin{File: from}); err != nil {
			return tap.Port{}, 0, fmt.Errorf("%s: %w", ifname, err)
		}
	}
	port := s.Port()
	port.Bridges = bridge.Host{OVS: ovsOf(getenv)}
	mtu, err := tap.MTU(conn, port)
	if err != nil {
		return port, 0, ifconf.Explain(ifname, fmt.Errorf("%s: %w", ifname, err))
	}
	return port, mtu, nil
}
