// Package bridgehelper is qemu-bridge-helper: the program QEMU runs for
// -netdev bridge (and for -netdev tap,helper=) to get a tap on a bridge
// without being privileged itself. QEMU runs
//
//	HELPER --use-vnet --fd=N --br=BRIDGE
//
// (through /bin/sh -c when the helper string holds blanks) with N one end
// of a unix socketpair. The helper checks the bridge against the ACL file,
// creates a tap, makes it a port of the bridge as qemu-ifup would, sends
// the tap's file descriptor back over the socket and exits 0. Any failure
// is exit status 1 and one line on stderr; the tap is not persistent, so it
// dies with the helper's descriptor and nothing is left behind.
package bridgehelper

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bridgeacl"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/bridgelist"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/journal"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/privs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/proc"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/version"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// Name is the program's name in messages.
const Name = "qemu-bridge-helper"

// tapPattern is the name the kernel numbers, as upstream's helper asks.
const tapPattern = "tap%d"

const usage = "usage: " + Name + " [--use-vnet] --br=BRIDGE --fd=FD"

const help = usage + `

Creates a tap on BRIDGE for an unprivileged QEMU and passes its file
descriptor back over the unix socket FD (QEMU's -netdev bridge,helper=).
BRIDGE must be allowed by ` + "%s" + ` (allow NAME | allow all |
deny NAME | deny all | include FILE; default deny, deny wins).
The tap gets the bridge's MTU, a MAC starting with fe, promiscuous mode
and is up, as qemu-ifup makes it (settings from /etc/qemu-ifup.conf).

  --use-vnet   give the tap a virtio-net header if the kernel can
  --help       show this help
  --version    show the version

Exit status: 0 done, 1 failed (one line on stderr, no tap left behind).
`

// Options are the parsed command line.
type Options struct {
	UseVnet bool
	FD      int
	Bridge  string
	Help    bool
	Version bool
}

// Parse parses the arguments after the program name, as upstream's helper
// takes them: --use-vnet, --br=NAME and --fd=N in any order. A bridge name
// longer than 15 bytes is refused here, before anything looks it up
// (CVE-2019-13164: the kernel truncated it after the ACL had allowed the
// whole string).
func Parse(args []string) (Options, error) {
	o := Options{FD: -1}
	for _, a := range args {
		key, val, hasVal := strings.Cut(a, "=")
		switch {
		case a == "--use-vnet":
			o.UseVnet = true
		case a == "--help" || a == "-h":
			o.Help = true
		case a == "--version":
			o.Version = true
		case key == "--br" && hasVal:
			if o.Bridge != "" {
				return o, errors.New("--br given twice")
			}
			if err := link.ValidateName(val); err != nil {
				return o, fmt.Errorf("--br: %w", err)
			}
			o.Bridge = val
		case key == "--fd" && hasVal:
			if o.FD != -1 {
				return o, errors.New("--fd given twice")
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return o, fmt.Errorf("--fd=%s: not a file descriptor number", val)
			}
			o.FD = n
		default:
			return o, fmt.Errorf("unknown argument %q", a)
		}
	}
	switch {
	case o.Help || o.Version:
	case o.Bridge == "":
		return o, errors.New("missing --br=BRIDGE")
	case o.FD == -1:
		return o, errors.New("missing --fd=FD")
	}
	return o, nil
}

// A System is what a run takes from its process, with the ACL file and
// the caller.
type System struct {
	proc.Process
	// ACLPath is the ACL file.
	ACLPath string
	// UID is the caller's (real) user id, for the journal.
	UID int
}

// OS returns the System of this process.
func OS() *System {
	return &System{Process: proc.Current(), ACLPath: bridgeacl.Path, UID: os.Getuid()}
}

// log sends one entry to the journal, naming the tap (when there is one),
// the bridge and the caller: which user got which tap on which bridge, or
// was refused, is the record a privileged helper owes the administrator.
func (s *System) log(pri int, msg, tapName, br string) {
	if s.Journal == nil {
		return
	}
	f := map[string]string{"SYSLOG_IDENTIFIER": Name, "QEMU_BRIDGE": br, "QEMU_CALLER_UID": strconv.Itoa(s.UID)}
	if tapName != "" {
		f["QEMU_TAP"] = tapName
	}
	s.Journal(Name+": "+msg, pri, f)
}

// Main runs the helper with the arguments after the program name and
// returns the exit status: 0 done, 1 anything else (QEMU only tells 0
// from the rest).
func Main(args []string, sys *System) int {
	o, err := Parse(args)
	switch {
	case err != nil:
		// A refusal too: the journal has it whatever the caller passed.
		if !sys.StderrIsJournal {
			sys.log(journal.PriErr, fmt.Sprintf("%v (caller uid %d)", err, sys.UID), "", o.Bridge)
		}
		fmt.Fprintf(sys.Stderr, "%s: %v (%s)\n", Name, err, usage)
		return 1
	case o.Help:
		fmt.Fprintf(sys.Stdout, help, sys.ACLPath)
		return 0
	case o.Version:
		fmt.Fprintf(sys.Stdout, "%s %s\n", Name, version.Version)
		return 0
	}
	// Whoever runs it (a file capability, or root), nothing but
	// CAP_NET_ADMIN is needed from here on.
	if err := privs.KeepOnly(unix.CAP_NET_ADMIN); err != nil && !errors.Is(err, privs.ErrNotDropped) {
		fmt.Fprintf(sys.Stderr, "%s: drop capabilities: %v\n", Name, err)
		return 1
	}
	if err := Run(o, sys); err != nil {
		if !sys.StderrIsJournal {
			sys.log(journal.PriErr, fmt.Sprintf("%v (caller uid %d)", err, sys.UID), "", o.Bridge)
		}
		fmt.Fprintf(sys.Stderr, "%s: %v\n", Name, err)
		return 1
	}
	return 0
}

// Run does the work of one call: check the socket and the ACL, create the
// tap, make it a port of the bridge and send it. On failure the tap is
// closed, which removes it.
func Run(o Options, sys *System) error {
	if err := checkSocket(o.FD); err != nil {
		return err
	}
	br := o.Bridge
	if err := bridgeacl.CheckFile(sys.ACLPath, br, bridgeacl.Options{Strict: sys.Secure}); err != nil {
		return err
	}
	conn, err := link.Open()
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer conn.Close()
	// Look the bridge up before making a tap, so that a wrong name is
	// reported as such.
	if _, err := (bridge.Host{}).Find(conn, br); err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return fmt.Errorf("%w (%s)", err, bridgelist.Hint(conn))
		}
		return err
	}
	gone, err := sweep(conn)
	for _, g := range gone {
		sys.log(journal.PriInfo, fmt.Sprintf("removed %s: a tap of this helper made persistent, which nobody held", g), "", br)
	}
	if err != nil {
		return err
	}
	// The caller's tap: no other user may attach to it.
	dev, err := tap.Create(tapPattern, o.UseVnet, sys.UID)
	if err != nil {
		return explainCreate(err)
	}
	defer dev.File.Close()
	if err := mark(conn, dev.Name); err != nil {
		return err
	}
	set, err := ifconf.ResolveConfig(dev.Name, ifconf.Env{Getenv: sys.Env})
	if err != nil {
		return fmt.Errorf("%s: %w", dev.Name, err)
	}
	if err := set.Set(ifconf.KeyBridge, br, ifconf.Origin{File: "--br"}); err != nil {
		return fmt.Errorf("--br: %w", err)
	}
	pl, err := tap.PlanUp(conn, dev.Name, set.Port())
	if err != nil {
		return ifconf.Explain(dev.Name, err)
	}
	if err := pl.Apply(conn, nil); err != nil {
		return err
	}
	if err := sendFD(o.FD, dev.File); err != nil {
		return fmt.Errorf("%s: send to QEMU over --fd=%d: %w", dev.Name, o.FD, err)
	}
	sys.log(journal.PriInfo, fmt.Sprintf("%s: port of %s, sent to the caller (uid %d)", dev.Name, br, sys.UID), dev.Name, br)
	return nil
}

// mark gives the new tap the helper's alias, by which a later call knows
// it for its own.
func mark(c *link.Conn, name string) error {
	l, err := c.ByName(name)
	if err == nil {
		err = c.SetAlias(l, Marker)
	}
	if err != nil {
		return fmt.Errorf("%s: set alias %s: %w", name, Marker, err)
	}
	return nil
}

// explainCreate adds what a user can do about the usual failures.
func explainCreate(err error) error {
	switch {
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w (the helper's users must be able to open /dev/net/tun: mode 0666, as udev makes it)", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (the helper needs CAP_NET_ADMIN: setcap cap_net_admin+ep on it, or run it as root)", err)
	}
	return err
}

// checkSocket makes sure fd is a unix socket, as QEMU's socketpair is,
// before anything is created.
func checkSocket(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		if errors.Is(err, unix.EBADF) {
			return fmt.Errorf("--fd=%d: not an open file descriptor (QEMU passes one end of a unix socketpair)", fd)
		}
		return fmt.Errorf("--fd=%d: %w", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("--fd=%d: not a socket (QEMU passes one end of a unix socketpair)", fd)
	}
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("--fd=%d: %w", fd, err)
	}
	if dom != unix.AF_UNIX {
		return fmt.Errorf("--fd=%d: not a unix socket (QEMU passes one end of a unix socketpair)", fd)
	}
	return nil
}

// sendFD sends f over the unix socket fd as QEMU expects it: one byte of
// payload carrying the descriptor in SCM_RIGHTS.
func sendFD(fd int, f *os.File) error {
	return unix.Sendmsg(fd, []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
}
