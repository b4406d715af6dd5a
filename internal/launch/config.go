// Package launch runs QEMU for qemu-launch: it rewrites the command line
// (package qemuargs), checks the host for a real-time guest (package
// hostcheck), starts QEMU inside the host CPUs asked for, pins and
// prioritises the vCPU threads over QMP before the guest runs, keeps
// QEMU's other threads on the emulator CPUs, tells systemd, and stays
// QEMU's parent until it exits, powering the guest down on SIGTERM, SIGINT
// or SIGHUP and cleaning up after a QEMU that died.
package launch

import (
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// Defaults for the timeouts.
const (
	// DefaultShutdownTimeout is how long a guest gets to power down
	// before QEMU is sent SIGTERM, as Proxmox allows.
	DefaultShutdownTimeout = 60 * time.Second
	// DefaultQMPTimeout bounds QEMU's start-up until its QMP monitor
	// answers (taps and their up-scripts included).
	DefaultQMPTimeout = 30 * time.Second
	// TermTimeout is how long QEMU gets after SIGTERM before SIGKILL.
	TermTimeout = 10 * time.Second
	// probeTimeout bounds "QEMU -help".
	probeTimeout = 10 * time.Second
)

// A Config is one run of qemu-launch.
type Config struct {
	Binary string   // the QEMU binary, as exec.LookPath takes it
	Args   []string // QEMU's arguments, before the rewrite

	CPUs cpuset.Set // host CPUs for every QEMU thread; empty: no limit
	// EmulatorCPUs are the host CPUs of QEMU's threads other than the
	// vCPUs and the I/O threads placed by id; empty: not placed.
	EmulatorCPUs cpuset.Set
	IOThreadCPUs map[string]cpuset.Set      // I/O threads placed by -object iothread id
	IfUp         string                     // the helper for script=
	IfDown       string                     // the helper for downscript=
	Bridge       string                     // bridge for taps without one in Settings
	Settings     map[string]ifconf.Settings // per netdev id
	// User, when set, is the user (name or uid) QEMU runs as, without
	// capabilities; the launcher keeps the privileged work (user.go).
	User string

	ShutdownTimeout time.Duration // 0: DefaultShutdownTimeout
	QMPTimeout      time.Duration // 0: DefaultQMPTimeout

	DryRun    bool
	CheckHost bool // check the host for the VM's real-time vCPUs; start nothing
	Strict    bool // the host check's warnings refuse the start
	List      bool // list the VMs of this network namespace; start nothing
	JSON      bool // --list as JSON
	Verbose   bool

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv and Environ read the environment: the run directory of the
	// records, systemd's variables, and QEMU's environment.
	Getenv  func(string) string
	Environ func() []string

	// hostRoot is where the host check reads /proc and /sys; "" is "/".
	hostRoot string
}

// FromOS fills in the streams and the environment of this process.
func (c *Config) FromOS() {
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Getenv, c.Environ = os.Getenv, os.Environ
}

// DefaultHelpers finds qemu-ifup and qemu-ifdown: installed next to the
// running executable (or in ../libexec/qemu-tap-helpers from it, where
// "make install" puts them), else QEMU's own /etc/qemu-ifup and
// /etc/qemu-ifdown.
func DefaultHelpers() (up, down string) {
	up, down = "/etc/qemu-ifup", "/etc/qemu-ifdown"
	exe, err := os.Executable()
	if err != nil {
		return up, down
	}
	dir := filepath.Dir(exe)
	for _, d := range []string{dir, filepath.Join(dir, "..", "libexec", "qemu-tap-helpers")} {
		u, dn := filepath.Join(d, "qemu-ifup"), filepath.Join(d, "qemu-ifdown")
		if executable(u) && executable(dn) {
			return filepath.Clean(u), filepath.Clean(dn)
		}
	}
	return up, down
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func (c *Config) shutdownTimeout() time.Duration {
	if c.ShutdownTimeout > 0 {
		return c.ShutdownTimeout
	}
	return DefaultShutdownTimeout
}

func (c *Config) qmpTimeout() time.Duration {
	if c.QMPTimeout > 0 {
		return c.QMPTimeout
	}
	return DefaultQMPTimeout
}
