// Package ifconf decides how qemu-ifup configures a tap: which bridge, MTU,
// MAC policy and promiscuous mode. It reads, in this order of precedence:
//
//  1. the per-interface record qemu-launch writes under /run;
//  2. the QEMU_BRIDGE environment variable (the bridge only);
//  3. the first [Interface] rule of /etc/qemu-ifup.conf whose Name= matches;
//  4. the [Defaults] section of that file;
//  5. built-in defaults: bridge virbr0, the bridge's MTU, a high MAC,
//     promiscuous on.
//
// Both files use systemd's unit-file syntax:
//
//	[Defaults]
//	Bridge=virbr0
//
//	[Interface]
//	Name=rt-* vm7-*
//	Bridge=br-rt
//	MTU=9000
//	MAC=keep
//	Promiscuous=no
//	AllowMove=yes
package ifconf

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
)

// Paths and variables, as documented in the README.
const (
	DefaultConfigPath = "/etc/qemu-ifup.conf"
	DefaultRunDir     = "/run/qemu-tap-helpers"
	DefaultBridge     = "virbr0"

	EnvBridge = "QEMU_BRIDGE"
	EnvConfig = "QEMU_IFUP_CONFIG"
	EnvRunDir = "QEMU_TAP_HELPERS_RUNDIR"
	// EnvOVSDB names the Open vSwitch database ovs-vsctl connects to
	// (its --db syntax, "unix:/run/openvswitch/db.sock").
	EnvOVSDB = "QEMU_OVS_DB"

	// MaxConfig bounds the config file's size, checked before reading
	// it whole.
	MaxConfig = unitfile.MaxSize
)

// A Rule is an [Interface] section: settings for the taps whose name
// matches one of Patterns (shell globs, as path.Match takes them).
type Rule struct {
	Patterns []string
	Line     int
	Settings Settings
}

// A Config is a parsed /etc/qemu-ifup.conf.
type Config struct {
	Path     string
	Defaults Settings
	Rules    []Rule
}

// ParseConfig parses and checks a whole config file; file names it in
// errors ("file:line: ...").
func ParseConfig(file string, data []byte) (*Config, error) {
	secs, err := unitfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c := &Config{Path: file}
	for _, s := range secs {
		switch s.Name {
		case "Defaults":
			for _, e := range s.Entries {
				if err := c.Defaults.setEntry(file, e); err != nil {
					return nil, err
				}
			}
		case "Interface":
			r := Rule{Line: s.Line}
			for _, e := range s.Entries {
				if e.Key == "Name" {
					pats, err := patterns(e.Value)
					if err != nil {
						return nil, fmt.Errorf("%s:%d: Name: %w", file, e.Line, err)
					}
					r.Patterns = append(r.Patterns, pats...)
					continue
				}
				if err := r.Settings.setEntry(file, e); err != nil {
					return nil, err
				}
			}
			if len(r.Patterns) == 0 {
				return nil, fmt.Errorf("%s:%d: [Interface] without Name=", file, s.Line)
			}
			c.Rules = append(c.Rules, r)
		default:
			return nil, fmt.Errorf("%s:%d: unknown section [%s] (want [Defaults] or [Interface])", file, s.Line, s.Name)
		}
	}
	return c, nil
}

func patterns(v string) ([]string, error) {
	pats := strings.Fields(v)
	if len(pats) == 0 {
		return nil, errors.New("empty")
	}
	for _, p := range pats {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q", p)
		}
	}
	return pats, nil
}

// Match returns the first rule matching the interface name, or nil.
func (c *Config) Match(ifname string) *Rule {
	for i := range c.Rules {
		for _, p := range c.Rules[i].Patterns {
			if ok, _ := path.Match(p, ifname); ok {
				return &c.Rules[i]
			}
		}
	}
	return nil
}

// An Env is where Resolve looks for settings beyond the tap's name.
type Env struct {
	// Getenv reads the environment; nil means the environment is not
	// trusted (a setuid or file-capability run, see Secure) and only
	// the default paths are used.
	Getenv func(string) string
	// Records is the namespace's run directory; nil: no record is read.
	Records *rundir.Dir
	// Logf says what Resolve did on the side (a stale record removed).
	Logf func(string)
}

func (e Env) get(key string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(key)
}

// ConfigPath is the config file to read.
func (e Env) ConfigPath() string {
	if p := e.get(EnvConfig); p != "" {
		return p
	}
	return DefaultConfigPath
}

// RunDir is the base of the run directories (package rundir), where
// qemu-launch leaves per-interface records and the helpers take locks.
func (e Env) RunDir() string {
	if d := e.get(EnvRunDir); d != "" {
		return d
	}
	return DefaultRunDir
}

// Resolve works out the settings for the tap called ifname, each with
// where it was given. A missing config file or record is not an error; an
// unreadable or malformed one is.
func Resolve(ifname string, env Env) (Settings, error) {
	s, err := ResolveConfig(ifname, env)
	if err != nil {
		return s, err
	}
	if br := env.get(EnvBridge); br != "" {
		if err := s.Set(KeyBridge, br, Origin{File: EnvBridge}); err != nil {
			return s, fmt.Errorf("%s: %w", EnvBridge, err)
		}
	}
	if env.Records == nil {
		return s, nil
	}
	rec, err := ReadRecord(env.Records, ifname, env.Logf)
	if err != nil {
		return s, err
	}
	if rec != nil {
		s.Merge(rec.Settings)
	}
	return s, nil
}

// ResolveConfig works out the settings the config file alone gives the
// tap called ifname, for a caller that chose the bridge itself (the bridge
// helper, whose tap qemu-launch did not name): no record, no QEMU_BRIDGE.
func ResolveConfig(ifname string, env Env) (Settings, error) {
	s := Defaults()
	cfgPath := env.ConfigPath()
	data, err := rundir.ReadFile(cfgPath, MaxConfig)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return s, fmt.Errorf("read config: %w", err)
	default:
		c, err := ParseConfig(cfgPath, data)
		if err != nil {
			return s, err
		}
		s.Merge(c.Defaults)
		if r := c.Match(ifname); r != nil {
			s.Merge(r.Settings)
		}
	}
	return s, nil
}
