package launch

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/version"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

const usage = `usage: qemu-launch [OPTIONS] [--] QEMU-BINARY [QEMU-ARGS...]
       qemu-launch [OPTIONS] --config FILE
       qemu-launch --check-host [OPTIONS] (--config FILE | QEMU-BINARY [QEMU-ARGS...])
       qemu-launch --list [--json]`

const help = usage + `

Runs QEMU as its parent: wires -netdev tap to qemu-ifup/qemu-ifdown, turns
-realtime and -vcpu into what stock QEMU does, pins vCPU threads, and powers
the guest down on SIGTERM, SIGINT or SIGHUP. Exits with QEMU's status.

Options:
  --config FILE           the VM described in a file (systemd unit syntax)
  --cpus LIST             host CPUs for every QEMU thread (taskset list: 2,3 or 0-3,8)
  --emulator-cpus LIST    host CPUs for QEMU's threads other than the vCPUs (main
                          loop, I/O, RCU, workers, and threads they start later)
  --iothread-cpus ID=LIST host CPUs for the I/O thread -object iothread,id=ID (repeatable)
  --user USER             run QEMU as USER (name or uid), without capabilities; the
                          launcher opens the taps and keeps the privileged work
  --bridge BR             bridge for the taps given none
  --bridge NETDEV_ID=BR   bridge for the tap of one netdev (repeatable)
  --ifup PATH             the up-script wired into script= (default: %s)
  --ifdown PATH           the down-script wired into downscript= (default: %s)
  --shutdown-timeout DUR  time the guest has to power down before SIGTERM (default %s)
  --qmp-timeout DUR       time QEMU has to answer on QMP at start-up (default %s)
  --dry-run               print QEMU's command line and the launcher's actions; start nothing
  --check-host            check this host for the VM's SCHED_FIFO vCPUs (isolation,
                          real-time throttling, memory lock, placement); start nothing
  --strict                the host check's warnings refuse the start (and fail --check-host)
  --list                  list the VMs of this network namespace: state, taps, bridges,
                          threads' CPUs and scheduling; start nothing
  --json                  --list as JSON
  --verbose, -v           say what is done, on stderr
  --help, -h              this help
  --version               print the version
`

// A usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// bridgeFlag collects --bridge BR and --bridge ID=BR.
type bridgeFlag struct {
	def   string
	perID map[string]string
}

func (b *bridgeFlag) String() string { return "" }

func (b *bridgeFlag) Set(v string) error {
	id, br, per := strings.Cut(v, "=")
	if !per {
		br = v
	}
	if err := link.ValidateName(br); err != nil {
		return err
	}
	switch {
	case !per && b.def != "":
		return fmt.Errorf("bridge for taps without one given twice (%s, %s)", b.def, br)
	case !per:
		b.def = br
	case id == "":
		return errors.New("empty netdev id before '='")
	case b.perID[id] != "":
		return fmt.Errorf("bridge for netdev %s given twice", id)
	default:
		if b.perID == nil {
			b.perID = map[string]string{}
		}
		b.perID[id] = br
	}
	return nil
}

// iothreadFlag collects --iothread-cpus ID=LIST.
type iothreadFlag map[string]cpuset.Set

func (f iothreadFlag) String() string { return "" }
func (f iothreadFlag) Set(v string) error {
	id, list, ok := strings.Cut(v, "=")
	if !ok || id == "" {
		return errors.New("want ID=LIST, the id of an -object iothread and its CPUs")
	}
	if _, dup := f[id]; dup {
		return fmt.Errorf("CPUs for I/O thread %s given twice", id)
	}
	s, err := cpuset.ParseList(list)
	if err != nil {
		return err
	}
	f[id] = s
	return nil
}

type cpusFlag struct{ set *cpuset.Set }

func (c cpusFlag) String() string { return "" }
func (c cpusFlag) Set(v string) error {
	s, err := cpuset.ParseList(v)
	if err != nil {
		return err
	}
	*c.set = s
	return nil
}

// Parse reads qemu-launch's command line into c, which FromOS has
// filled. It returns done=true when --help or --version was served.
func Parse(args []string, c *Config) (done bool, err error) {
	up, down := DefaultHelpers()
	fs := flag.NewFlagSet("qemu-launch", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		br         bridgeFlag
		config     string
		showHelp   bool
		showVer    bool
		shutdown   = fs.Duration("shutdown-timeout", DefaultShutdownTimeout, "")
		qmpTimeout = fs.Duration("qmp-timeout", DefaultQMPTimeout, "")
	)
	fs.StringVar(&config, "config", "", "")
	fs.Var(cpusFlag{&c.CPUs}, "cpus", "")
	fs.Var(cpusFlag{&c.EmulatorCPUs}, "emulator-cpus", "")
	iothreads := iothreadFlag{}
	fs.Var(iothreads, "iothread-cpus", "")
	fs.BoolVar(&c.CheckHost, "check-host", false, "")
	fs.BoolVar(&c.Strict, "strict", false, "")
	fs.BoolVar(&c.List, "list", false, "")
	fs.BoolVar(&c.JSON, "json", false, "")
	fs.StringVar(&c.User, "user", "", "")
	fs.Var(&br, "bridge", "")
	fs.StringVar(&c.IfUp, "ifup", up, "")
	fs.StringVar(&c.IfDown, "ifdown", down, "")
	fs.BoolVar(&c.DryRun, "dry-run", false, "")
	fs.BoolVar(&c.Verbose, "verbose", false, "")
	fs.BoolVar(&c.Verbose, "v", false, "")
	fs.BoolVar(&showHelp, "help", false, "")
	fs.BoolVar(&showHelp, "h", false, "")
	fs.BoolVar(&showVer, "version", false, "")
	if err := fs.Parse(args); err != nil {
		// The flag package names options "-x"; this help says "--x".
		msg := strings.TrimPrefix(err.Error(), "invalid value ")
		msg = strings.NewReplacer(": -", ": --", "flag -", "--").Replace(msg)
		return false, &usageError{msg}
	}
	switch {
	case showHelp:
		fmt.Fprintf(c.Stdout, help, up, down, DefaultShutdownTimeout, DefaultQMPTimeout)
		return true, nil
	case showVer:
		fmt.Fprintf(c.Stdout, "qemu-launch %s\n", version.Version)
		return true, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, d := range []*time.Duration{shutdown, qmpTimeout} {
		if *d <= 0 {
			return false, &usageError{"timeouts must be positive"}
		}
	}
	c.ShutdownTimeout, c.QMPTimeout = *shutdown, *qmpTimeout

	rest := fs.Args()
	if c.JSON && !c.List {
		return false, &usageError{"--json goes with --list"}
	}
	if c.List {
		if config != "" || len(rest) > 0 {
			return false, &usageError{"--list takes no VM: it lists those running in this network namespace"}
		}
		return false, nil
	}
	if config != "" {
		if len(rest) > 0 {
			return false, &usageError{"--config takes no QEMU command line; put extra arguments in its [QEMU] section"}
		}
		vm, err := loadVM(config)
		if err != nil {
			return false, err
		}
		for id := range iothreads {
			set["iothread-cpus "+id] = true
		}
		if err := checkFileCPUs(config, vm, set); err != nil {
			return false, err
		}
		c.Binary, c.Args = vm.Binary, vm.Args()
		if !set["cpus"] {
			c.CPUs = vm.HostCPUs
		}
		if !set["emulator-cpus"] {
			c.EmulatorCPUs = vm.EmulatorCPUs
		}
		for id, cpus := range vm.IOThreadCPUs() {
			if _, given := iothreads[id]; !given {
				iothreads[id] = cpus
			}
		}
		if !set["user"] {
			c.User = vm.User
		}
		if !set["shutdown-timeout"] && vm.ShutdownTimeout > 0 {
			c.ShutdownTimeout = vm.ShutdownTimeout
		}
		c.Settings = vm.TapSettings()
	} else {
		if len(rest) == 0 {
			return false, &usageError{"no QEMU binary given"}
		}
		c.Binary, c.Args = rest[0], rest[1:]
	}
	if len(iothreads) > 0 {
		c.IOThreadCPUs = iothreads
	}
	c.Bridge = br.def
	for id, b := range br.perID {
		if c.Settings == nil {
			c.Settings = map[string]ifconf.Settings{}
		}
		s := c.Settings[id]
		if err := s.Set(ifconf.KeyBridge, b, ifconf.Origin{File: "--bridge"}); err != nil {
			return false, &usageError{err.Error()}
		}
		c.Settings[id] = s
	}
	return false, nil
}

// Main runs qemu-launch with the arguments after the program name and
// returns its exit status.
func Main(ctx context.Context, args []string) int {
	var c Config
	c.FromOS()
	done, err := Parse(args, &c)
	var uerr *usageError
	switch {
	case errors.As(err, &uerr):
		fmt.Fprintf(c.Stderr, "qemu-launch: %s\n%s\n", uerr.msg, usage)
		return 2
	case err != nil:
		printError(c.Stderr, err)
		return 1
	case done:
		return 0
	}
	code, err := Run(ctx, &c)
	if err != nil {
		printError(c.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// printError writes err as lines starting "qemu-launch: ": one per error
// when it joins several (every error of a VM file).
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "qemu-launch: %s\n", line)
	}
}
