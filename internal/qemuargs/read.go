package qemuargs

import (
	"encoding/json"
	"strconv"
	"strings"
)

// These read what the launcher's host check and thread placement need
// from a command line, after the rewrite. They never fail: what they
// cannot read, QEMU will judge.

// locksMemory reports whether QEMU is asked to lock its memory: the last
// of -overcommit mem-lock= and -realtime mlock= decides, as in QEMU.
func locksMemory(args []string) bool {
	lock := false
	values(args, func(name, val string) {
		key := "mem-lock"
		if name == "realtime" {
			key = "mlock"
			if _, set := parseOpts(val, "").get(key); !set {
				lock = true // -realtime's default
				return
			}
		}
		if v, set := parseOpts(val, "").get(key); set {
			lock = v == "on" || v == "on-fault"
		}
	}, "overcommit", "realtime")
	return lock
}

// memorySize is the guest's memory at start (-m SIZE or -m size=SIZE, in
// MiB without a suffix), 0 when not given or not readable.
func memorySize(args []string) int64 {
	var size int64
	values(args, func(_, val string) {
		if v, ok := parseOpts(val, "size").get("size"); ok {
			size = parseSize(v)
		}
	}, "m")
	return size
}

// parseSize reads a size as QEMU's -m does: a number, possibly with a
// fraction, and an optional suffix K, M, G or T (M when none).
func parseSize(v string) int64 {
	mult := int64(1) << 20
	if n := len(v); n > 0 {
		switch strings.ToUpper(v[n-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		case "B":
			mult = 1
		default:
			if v[n-1] < '0' || v[n-1] > '9' {
				return 0
			}
		}
		if v[n-1] < '0' || v[n-1] > '9' {
			v = v[:n-1]
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<62 {
		return 0
	}
	return int64(f * float64(mult))
}

// ioThreads lists the ids of the I/O threads the command creates
// (-object iothread,id=ID or its JSON form).
func ioThreads(args []string) []string {
	var ids []string
	values(args, func(_, val string) {
		var typ, id string
		if strings.HasPrefix(val, "{") {
			var o struct {
				Type string `json:"qom-type"`
				ID   string `json:"id"`
			}
			if json.Unmarshal([]byte(val), &o) != nil {
				return
			}
			typ, id = o.Type, o.ID
		} else {
			o := parseOpts(val, "qom-type")
			typ, _ = o.get("qom-type")
			id, _ = o.get("id")
		}
		if typ == "iothread" && id != "" {
			ids = append(ids, id)
		}
	}, "object")
	return ids
}

// readsTerminal reports whether QEMU talks to its standard input: a
// console or monitor on stdio (-nographic's default serial and monitor,
// -serial/-monitor/-qmp/-parallel/-chardev stdio) or a curses display.
func readsTerminal(args []string) bool {
	for i := 0; i < len(args); i++ {
		switch n := optName(args[i]); {
		case n == "nographic" || n == "curses":
			return true
		case n != "" && !noArg[n]:
			i++ // its value, which may look like an option
		}
	}
	reads := false
	values(args, func(name, val string) {
		switch name {
		case "display":
			reads = reads || strings.HasPrefix(val, "curses")
		case "chardev":
			// -chardev BACKEND,id=...: the backend is the implied key.
			reads = reads || strings.HasPrefix(val, "stdio,") || val == "stdio"
		default:
			reads = reads || val == "stdio" || strings.HasPrefix(val, "stdio,")
		}
	}, "display", "chardev", "serial", "monitor", "qmp", "qmp-pretty", "parallel", "debugcon")
	return reads
}

// UsesDisplay reports whether QEMU opens a window, which needs the
// desktop's environment: the last -display is gtk, sdl or spice-app (which
// starts a viewer), or, with none, QEMU picks its default display, as it
// does unless -nographic, -vnc or -spice say otherwise.
func UsesDisplay(args []string) bool {
	display, nographic, remote := "", false, false
	for i := 0; i < len(args); i++ {
		switch n := optName(args[i]); {
		case n == "nographic":
			nographic = true
		case n == "sdl" || n == "curses":
			display = n
		case n == "" || noArg[n] || i+1 == len(args):
		default:
			i++
			switch n {
			case "display":
				// -display vnc=:1 names its type as a key.
				display, _, _ = strings.Cut(args[i], ",")
				display, _, _ = strings.Cut(display, "=")
				if t, ok := parseOpts(args[i], "type").get("type"); ok {
					display = t
				}
			case "vnc", "spice":
				remote = true
			}
		}
	}
	switch display {
	case "":
		return !nographic && !remote
	case "gtk", "sdl", "spice-app", "cocoa":
		return true
	}
	return false
}

// NamedFds lists the descriptors a command line hands QEMU by number (fd=,
// fds=, vhostfd= and vhostfds= of any option but -append's kernel command
// line, -add-fd's fd= among them, and -incoming fd:N): whoever wrote it
// opened them for QEMU.
func NamedFds(args []string) []int {
	var fds []int
	for i := 0; i < len(args); i++ {
		o := optName(args[i])
		if o == "" || noArg[o] || i+1 == len(args) {
			continue
		}
		i++
		switch o {
		case "append":
			continue
		case "incoming":
			if n, err := strconv.Atoi(strings.TrimPrefix(args[i], "fd:")); err == nil && strings.HasPrefix(args[i], "fd:") {
				fds = append(fds, n)
			}
			continue
		}
		for _, o := range parseOpts(args[i], "") {
			switch o.key {
			case "fd", "fds", "vhostfd", "vhostfds":
				for _, s := range strings.Split(o.val, ":") {
					if n, err := strconv.Atoi(s); err == nil && n >= 0 {
						fds = append(fds, n)
					}
				}
			}
		}
	}
	return fds
}
