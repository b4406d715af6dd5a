package ifconf

import (
	"errors"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// Explain says an error of PlanUp for the tap called name in terms of the
// settings' keys: which key a bridge refuses, or which one to write. Other
// errors come back as they are.
func Explain(name string, err error) error {
	var other *tap.OtherBridgeError
	var setting *bridge.SettingError
	switch {
	case errors.As(err, &other):
		return &explained{err.Error() + " (" + KeyAllowMove.String() + "=yes in the config moves it)", err}
	case errors.As(err, &setting):
		msg := name + ": " + settingKey(setting).String() + "=" + setting.Value + " " + setting.Reason
		switch setting.Setting {
		case bridge.SettingSpoofing:
			if setting.Value == "deny" && strings.HasPrefix(setting.Reason, "needs the guest's MAC") {
				msg += " (" + KeyGuestMAC.String() + "= gives it, as does the VM file's MACAddress=)"
			}
		case bridge.SettingAddrs:
			msg += " (" + KeySpoofing.String() + "=deny)"
		}
		return &explained{msg, err}
	}
	return err
}

// settingKey is the key that gives the setting e is about.
func settingKey(e *bridge.SettingError) Key {
	switch e.Setting {
	case bridge.SettingVLAN:
		return KeyVLAN
	case bridge.SettingTrunks:
		return KeyTrunks
	case bridge.SettingInboundRate:
		return KeyInboundRate
	case bridge.SettingInboundBurst:
		return KeyInboundBurst
	case bridge.SettingOutboundRate:
		return KeyOutboundRate
	case bridge.SettingOutboundBurst:
		return KeyOutboundBurst
	case bridge.SettingSpoofing:
		return KeySpoofing
	case bridge.SettingAddrs:
		return KeyIPAddress
	case bridge.SettingLogicalPort:
		return KeyLogicalPort
	}
	return flagKeys[e.Flag]
}

// explained is an error said again in the settings' words.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }
