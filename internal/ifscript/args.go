// Package ifscript is the command line of qemu-ifup and qemu-ifdown: the
// scripts QEMU runs with a tap's name as the only argument.
package ifscript

import (
	"fmt"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A Command is qemu-ifup or qemu-ifdown.
type Command struct {
	Name     string // program name in messages
	CanCheck bool   // takes --check
	Summary  string // one line for --help
	run      func(Options, *System) error
}

// Up is qemu-ifup.
func Up() Command {
	return Command{
		Name:     "qemu-ifup",
		CanCheck: true,
		Summary:  "attach a QEMU tap to its bridge (bridge MTU, high MAC, promiscuous, up)",
		run:      up,
	}
}

// Down is qemu-ifdown.
func Down() Command {
	return Command{
		Name:    "qemu-ifdown",
		Summary: "detach a QEMU tap from its bridge and turn off the promiscuous mode qemu-ifup set",
		run:     down,
	}
}

// Options are the parsed command line.
type Options struct {
	Ifname  string
	Quiet   bool
	DryRun  bool
	Check   bool
	Help    bool
	Version bool
}

// A UsageError is a bad command line: exit status 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func (c Command) usage() string {
	opts := "[--quiet] [--dry-run]"
	if c.CanCheck {
		opts += " [--check]"
	}
	return fmt.Sprintf("usage: %s %s IFNAME", c.Name, opts)
}

func (c Command) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s: %s.\n\n", c.usage(), c.Name, c.Summary)
	b.WriteString("  --quiet     log successes to the journal only, not to stderr\n")
	b.WriteString("  --dry-run   print the changes it would make, change nothing\n")
	if c.CanCheck {
		b.WriteString("  --check     exit 0 if the tap is configured as it would make it, else 1\n")
	}
	b.WriteString("  --help      show this help\n  --version   show the version\n\n")
	if c.CanCheck {
		b.WriteString("The bridge comes from qemu-launch's record in the namespace's run directory\n" +
			"(/run/qemu-tap-helpers/net-INODE/IFNAME.conf), else QEMU_BRIDGE, else\n" +
			"/etc/qemu-ifup.conf (QEMU_IFUP_CONFIG), else virbr0 if it exists, else the\n" +
			"Linux bridge that carries the default route.\n")
	} else {
		b.WriteString("The bridge is the one the tap is on, as the kernel (or Open vSwitch) has it;\n" +
			"a tap already gone or on no bridge is success. qemu-launch's record for the\n" +
			"tap is removed.\n")
	}
	b.WriteString("Exit status: 0 done, 1 failed (nothing left half-changed), 2 usage.\n")
	return b.String()
}

// Parse parses the arguments after the program name. Options may come
// before or after IFNAME; "--" ends them.
func (c Command) Parse(args []string) (Options, error) {
	var o Options
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		switch strings.TrimLeft(a, "-") {
		case "quiet", "q":
			o.Quiet = true
		case "dry-run", "n":
			o.DryRun = true
		case "check":
			if !c.CanCheck {
				return o, &UsageError{fmt.Sprintf("unknown option %q", a)}
			}
			o.Check = true
		case "help", "h":
			o.Help = true
		case "version":
			o.Version = true
		default:
			return o, &UsageError{fmt.Sprintf("unknown option %q", a)}
		}
	}
	if o.Help || o.Version {
		return o, nil
	}
	if o.DryRun && o.Check {
		return o, &UsageError{"--dry-run and --check exclude each other"}
	}
	switch len(pos) {
	case 0:
		return o, &UsageError{"missing IFNAME"}
	case 1:
	default:
		return o, &UsageError{fmt.Sprintf("expected one IFNAME, got %d arguments", len(pos))}
	}
	if err := link.ValidateName(pos[0]); err != nil {
		return o, &UsageError{err.Error()}
	}
	o.Ifname = pos[0]
	return o, nil
}
