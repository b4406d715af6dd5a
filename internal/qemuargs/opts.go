package qemuargs

import "strings"

// An opt is one key=value element of a QEMU option string.
type opt struct {
	key, val string
}

// opts is a parsed QEMU option string ("tap,id=vm0,script=no"), as QEMU's
// QemuOpts reads it: elements separated by ',', ",," standing for a comma
// inside a value, a first element without '=' giving the value of an
// implied key, and a later bare element "flag" meaning flag=on.
type opts []opt

func parseOpts(s, implied string) opts {
	var (
		out  opts
		elem strings.Builder
	)
	flush := func() {
		e := elem.String()
		elem.Reset()
		k, v, ok := strings.Cut(e, "=")
		switch {
		case e == "":
			// "" and a trailing ',' name nothing.
		case ok:
			out = append(out, opt{k, v})
		case len(out) == 0 && implied != "":
			out = append(out, opt{implied, e})
		default:
			out = append(out, opt{e, "on"})
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != ',' {
			elem.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == ',' {
			elem.WriteByte(',')
			i++
			continue
		}
		flush()
	}
	flush()
	return out
}

// get returns the last value of key (QEMU keeps the last one) and
// whether the key is present.
func (o opts) get(key string) (string, bool) {
	v, ok := "", false
	for _, e := range o {
		if e.key == key {
			v, ok = e.val, true
		}
	}
	return v, ok
}

// escape makes v safe as a value in an option string.
func escape(v string) string { return strings.ReplaceAll(v, ",", ",,") }
