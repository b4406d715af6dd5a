package ifscript

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/journal"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/proc"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/version"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// A System is what a run touches besides netlink: the process's streams,
// its environment and the journal.
type System struct {
	proc.Process
}

// Main runs the command with the arguments after the program name and
// returns the exit status: 0 success, 1 failure, 2 usage error.
func (c Command) Main(args []string, sys *System) int {
	o, err := c.Parse(args)
	var uerr *UsageError
	switch {
	case (o.Help || o.Version) && len(args) == 1 && interfaceExists(args[0]):
		// QEMU runs the script with the tap's name alone: a tap named
		// like an option must not make it print help and succeed.
		sys.logger(c.Name, args[0], false).send(journal.PriErr, link.ValidateName(args[0]).Error(), "")
		return 1
	case errors.As(err, &uerr):
		fmt.Fprintf(sys.Stderr, "%s: %s\n%s\n", c.Name, uerr.msg, c.usage())
		return 2
	case o.Help:
		io.WriteString(sys.Stdout, c.help())
		return 0
	case o.Version:
		fmt.Fprintf(sys.Stdout, "%s %s\n", c.Name, version.Version)
		return 0
	}
	if err := c.run(o, sys); err != nil {
		err = withHint(err)
		log := sys.logger(c.Name, o.Ifname, false)
		log.send(journal.PriErr, err.Error(), "")
		return 1
	}
	return 0
}

// interfaceExists reports whether an interface of this exact name exists
// in this network namespace, whatever the name (SIOCGIFINDEX).
func interfaceExists(name string) bool {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return false
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr) == nil
}

// logger writes one line per event to stderr and, where there is one, to
// the journal with fields naming the tap and the bridge.
type logger struct {
	sys   *System
	prog  string
	tap   string
	quiet bool
}

func (s *System) logger(prog, tap string, quiet bool) logger {
	return logger{sys: s, prog: prog, tap: tap, quiet: quiet}
}

func (l logger) send(pri int, msg, bridge string) {
	line := l.prog + ": " + msg
	if l.sys.Journal != nil {
		fields := map[string]string{"SYSLOG_IDENTIFIER": l.prog, "QEMU_TAP": l.tap}
		if bridge != "" {
			fields["QEMU_BRIDGE"] = bridge
		}
		if l.sys.Journal(line, pri, fields) == nil && l.sys.StderrIsJournal {
			return
		}
	}
	if pri <= journal.PriWarning || !l.quiet {
		fmt.Fprintln(l.sys.Stderr, line)
	}
}

func (l logger) info(msg, bridge string) { l.send(journal.PriInfo, l.tap+": "+msg, bridge) }

func (s *System) env() ifconf.Env { return ifconf.Env{Getenv: s.Env} }

// session is what both helpers hold while they work on a tap: its lock,
// its settings and a netlink handle.
type session struct {
	settings ifconf.Settings
	conn     *link.Conn
	dir      *rundir.Dir // nil when unprivileged without access to it
	unlock   func()
	// leave is set by a qemu-ifup that changes the tap: its lock file
	// stays for the tap's qemu-ifdown (rundir.Lock.Leave).
	leave bool
}

func (s *session) close() {
	s.conn.Close()
	s.unlock()
	if s.dir != nil {
		s.dir.Close()
	}
}

// open takes the tap's lock, resolves its settings and opens netlink.
// With lenient (qemu-ifdown), settings that do not resolve are a warning
// and the defaults stand: detaching needs nothing from them.
func open(ifname string, env ifconf.Env, log logger, lenient bool) (*session, error) {
	s := &session{}
	d, err := rundir.Open(env.RunDir())
	opened := err == nil
	var lk *rundir.Lock
	if opened {
		if lk, err = d.Lock(rundir.TapLock(ifname), lockWait); err != nil {
			d.Close()
		}
	}
	var busy *rundir.BusyError
	switch {
	case err == nil:
		s.dir = d
		s.unlock = func() {
			if s.leave {
				lk.Leave()
			} else {
				lk.Release()
			}
		}
		env.Records = d
		env.Logf = func(msg string) { log.info(msg, "") }
	case errors.As(err, &busy):
		return nil, fmt.Errorf("%s: busy: %v for %v (another qemu-ifup or qemu-ifdown)", ifname, busy, lockWait)
	case lenient && (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)):
		// qemu-ifdown detaches the tap even when the run directory can
		// take no new file. It normally finds the lock file its
		// qemu-ifup left; without one (left by no ifup, or by one of an
		// older version), the abstract lock needs no file, and a
		// qemu-ifup racing it fails for want of one.
		log.send(journal.PriWarning, fmt.Sprintf("%s: warning: %v; locking without the run directory, detaching anyway", ifname, err), "")
		if err := s.lockAbstract(ifname, log); err != nil {
			return nil, err
		}
	case !opened && os.Geteuid() != 0:
		// Run with a file capability by a user who cannot enter root's
		// run directory: no record is for it, and the tap's lock is an
		// abstract socket (lockAbstract).
		if err := s.lockAbstract(ifname, log); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: %w", ifname, err)
	}
	set, err := ifconf.Resolve(ifname, env)
	if err != nil {
		if !lenient {
			s.close0()
			return nil, fmt.Errorf("%s: %w", ifname, err)
		}
		log.send(journal.PriWarning, fmt.Sprintf("%s: warning: %v; detaching anyway", ifname, err), "")
		set = ifconf.Defaults()
	}
	s.settings = set
	s.conn, err = link.Open()
	if err != nil {
		s.close0()
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return s, nil
}

// lockAbstract takes the tap's abstract-socket lock, saying so when a
// squatter holds it.
func (s *session) lockAbstract(ifname string, log logger) error {
	unlock, squat, err := lockAbstract(ifname)
	if err != nil {
		return err
	}
	s.unlock = unlock
	if squat != "" {
		log.send(journal.PriWarning, ifname+": warning: "+squat, "")
	}
	return nil
}

// close0 undoes open before the netlink handle exists.
func (s *session) close0() {
	s.unlock()
	if s.dir != nil {
		s.dir.Close()
	}
}

func up(o Options, sys *System) error {
	s, err := open(o.Ifname, sys.env(), sys.logger(Up().Name, o.Ifname, o.Quiet), false)
	if err != nil {
		return err
	}
	defer s.close()
	set, conn := s.settings, s.conn
	if set.Origin(ifconf.KeyBridge).IsDefault() {
		br, from, err := defaultBridge(conn, o.Ifname)
		if err != nil {
			return err
		}
		if err := set.Set(ifconf.KeyBridge, br, ifconf.Origin{File: from}); err != nil {
			return fmt.Errorf("%s: %w", o.Ifname, err)
		}
	}
	port := set.Port()
	port.Bridges = bridge.Host{OVS: sys.ovs()}
	if err := sys.guard(o.Ifname, port.Bridge); err != nil {
		return err
	}
	pl, err := tap.PlanUp(conn, o.Ifname, port)
	if err != nil {
		return ifconf.Explain(o.Ifname, err)
	}
	br := port.Bridge
	down := fmt.Sprintf("%s: warning: bridge %s is down; attaching anyway (%s)", o.Ifname, br, downHint(br))
	switch {
	case o.DryRun:
		if pl.BridgeDown {
			fmt.Fprintln(sys.Stdout, down)
		}
		for _, w := range pl.Warnings {
			fmt.Fprintf(sys.Stdout, "%s: warning: %s\n", o.Ifname, w)
		}
		printPlan(sys.Stdout, pl, "already a port of "+br+" as configured")
		return nil
	case o.Check:
		var diffs []string
		if len(pl.Changes) > 0 {
			diffs = append(diffs, "differs from the configuration: "+joinChanges(pl.Changes))
		}
		if pl.BridgeDown {
			diffs = append(diffs, "bridge "+br+" is down ("+downHint(br)+")")
		}
		if len(diffs) > 0 {
			return fmt.Errorf("%s: %s", o.Ifname, strings.Join(diffs, "; "))
		}
		fmt.Fprintf(sys.Stdout, "%s: port of %s as configured\n", o.Ifname, br)
		return nil
	}
	log := sys.logger(Up().Name, o.Ifname, o.Quiet)
	if err := claim(conn, o.Ifname, log); err != nil {
		return err
	}
	if pl.BridgeDown {
		log.send(journal.PriWarning, down, br)
	}
	for _, w := range pl.Warnings {
		log.send(journal.PriWarning, o.Ifname+": warning: "+w, br)
	}
	// The tap's qemu-ifdown then locks without a new inode: it detaches
	// the tap even from a full run directory.
	s.leave = true
	if len(pl.Changes) == 0 {
		log.info("already a port of "+br+" as configured, nothing changed", br)
	} else {
		err := pl.Apply(conn, func(c tap.Change) {
			msg := c.String()
			if c.Op == tap.OpAttach {
				msg += " (bridge from " + set.Origin(ifconf.KeyBridge).String() + ")"
			}
			log.info(msg, br)
		})
		if err != nil {
			return err
		}
	}
	// Tell qemu-launch that its QEMU got this far with the tap: from now
	// on the tap is its VM's to take down.
	if s.dir != nil && s.dir.HasRecord(o.Ifname) {
		if err := s.dir.MarkUp(o.Ifname); err != nil {
			return fmt.Errorf("%s: %w", o.Ifname, err)
		}
	}
	return nil
}

// defaultBridge is the bridge when neither a record, the environment nor
// the config names one: virbr0 if it exists, else the Linux bridge that
// carries the default route, as Debian's own /etc/qemu-ifup picks it.
// It asks over c, the session's socket: a second one would cost its own
// set-up and teardown.
func defaultBridge(c *link.Conn, ifname string) (br, from string, err error) {
	if _, err := c.ByName(ifconf.DefaultBridge); err == nil {
		return ifconf.DefaultBridge, "default", nil
	} else if !errors.Is(err, link.ErrNotFound) {
		return "", "", fmt.Errorf("%s: look up %s: %w", ifname, ifconf.DefaultBridge, err)
	}
	idx, err := c.DefaultRouteLinks()
	if err != nil {
		return "", "", fmt.Errorf("%s: read the default route: %w", ifname, err)
	}
	var via []string
	for _, i := range idx {
		l, err := c.ByIndex(i)
		if err != nil {
			continue
		}
		if l.Kind == "bridge" {
			return l.Name, "default route", nil
		}
		via = append(via, l.Name)
	}
	route := "there is no default route"
	if len(via) > 0 {
		route = "the default route goes via " + strings.Join(via, ", ") + ", not a Linux bridge"
	}
	return "", "", fmt.Errorf("%s: no bridge given, %s does not exist and %s (set one with QEMU_BRIDGE or %s)",
		ifname, ifconf.DefaultBridge, route, ifconf.DefaultConfigPath)
}

func down(o Options, sys *System) error {
	s, err := open(o.Ifname, sys.env(), sys.logger(Down().Name, o.Ifname, o.Quiet), true)
	if err != nil {
		return err
	}
	defer s.close()
	conn, port := s.conn, s.settings.Port()
	port.Bridges = bridge.Host{OVS: sys.ovs()}
	pl, err := tap.PlanDown(conn, o.Ifname, port)
	if err != nil {
		return err
	}
	if !pl.Gone {
		if err := sys.guard(o.Ifname, pl.Bridge); err != nil {
			return err
		}
	}
	idle := "on no bridge, nothing to do"
	if pl.Gone {
		idle = "already gone, nothing to do"
	}
	if o.DryRun {
		printPlan(sys.Stdout, pl, idle)
		return nil
	}
	log := sys.logger(Down().Name, o.Ifname, o.Quiet)
	if len(pl.Changes) == 0 {
		log.info(idle, "")
	} else if err := pl.Apply(conn, func(c tap.Change) { log.info(c.String(), pl.Bridge) }); err != nil {
		return err
	}
	if s.dir == nil {
		return nil
	}
	return ifconf.RemoveRecord(s.dir, o.Ifname)
}

// safePath is the PATH ovs-vsctl is looked up in, and runs with, when the
// environment is not to be trusted.
const safePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ovs is how this run reaches Open vSwitch: ovs-vsctl with the caller's
// environment (QEMU_OVS_DB, else ovs-vsctl's own default, which follows
// OVS_RUNDIR), or, when the environment is not to be trusted, with a
// fixed PATH and nothing else.
func (s *System) ovs() *bridge.OVS { return ovsOf(s.Env) }

// ovsOf is ovs for the environment getenv, nil when not to be trusted.
func ovsOf(getenv func(string) string) *bridge.OVS {
	if getenv == nil {
		return &bridge.OVS{Env: []string{safePath}}
	}
	return &bridge.OVS{DB: getenv(ifconf.EnvOVSDB)}
}

func printPlan(w io.Writer, pl *tap.Plan, idle string) {
	if len(pl.Changes) == 0 {
		fmt.Fprintf(w, "%s: %s\n", pl.Tap, idle)
		return
	}
	for _, c := range pl.Changes {
		fmt.Fprintf(w, "%s: %s\n", pl.Tap, c)
	}
}

func joinChanges(cs []tap.Change) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}
