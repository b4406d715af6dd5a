package pkgmeta

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// An Entry is one entry of a Debian changelog.
type Entry struct {
	Package      string
	Version      string // full version, with the Debian revision
	Distribution string
	Urgency      string
	Changes      []string // the lines between header and trailer, as written ("  * ...")
	Maintainer   string
	Date         time.Time
}

var (
	headerLine  = regexp.MustCompile(`^(\S+) \(([^() ]+)\) ([^;]+); urgency=(\S+)$`)
	trailerLine = regexp.MustCompile(`^ -- (.+ <[^>]+>)  (.+)$`)
)

const debianDate = "Mon, 02 Jan 2006 15:04:05 -0700"

// ParseChangelog reads a Debian changelog (debian/changelog format).
func ParseChangelog(text string) ([]Entry, error) {
	var out []Entry
	var cur *Entry
	for i, line := range strings.Split(text, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "":
		case cur == nil:
			m := headerLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("changelog line %d: want \"package (version) distribution; urgency=...\", got %q", i+1, line)
			}
			cur = &Entry{Package: m[1], Version: m[2], Distribution: m[3], Urgency: m[4]}
		case strings.HasPrefix(line, " -- "):
			m := trailerLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("changelog line %d: want \" -- name <address>  date\", got %q", i+1, line)
			}
			d, err := time.Parse(debianDate, m[2])
			if err != nil {
				return nil, fmt.Errorf("changelog line %d: %w", i+1, err)
			}
			cur.Maintainer, cur.Date = m[1], d
			cur.Changes = trimBlank(cur.Changes)
			out = append(out, *cur)
			cur = nil
		default:
			cur.Changes = append(cur.Changes, line)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("changelog: entry %s has no \" -- \" line", cur.Version)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("changelog: no entry")
	}
	return out, nil
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// ForVersion makes the changelog's top entry the version being built, so
// that the package, its changelog and the binaries name one version:
//   - the top entry's version: as written;
//   - older (a snapshot or pre-release on the way to it): the top entry,
//     renamed to the version and dated at the build;
//   - newer (commits after it): a new entry saying so, on top.
func ForVersion(entries []Entry, version string, date time.Time) []Entry {
	top := entries[0]
	upstream := top.Version
	if i := strings.LastIndex(upstream, "-"); i >= 0 {
		upstream = upstream[:i]
	}
	switch c := CompareVersions(version, top.Version); {
	case c == 0:
		return entries
	case c < 0:
		e := top
		e.Version, e.Date = version, date.UTC()
		e.Changes = append([]string{"  * Development snapshot on the way to " + upstream + "."}, e.Changes...)
		return append([]Entry{e}, entries[1:]...)
	default:
		e := Entry{Package: top.Package, Version: version, Distribution: top.Distribution, Urgency: "medium",
			Changes: []string{"  * Development snapshot after " + upstream + "."}, Maintainer: top.Maintainer, Date: date.UTC()}
		return append([]Entry{e}, entries...)
	}
}

// NewsForVersion keeps a NEWS file's entries naming versions the
// changelog has: a top entry for a release still to come names the
// snapshot being built instead.
func NewsForVersion(entries []Entry, version string) []Entry {
	if CompareVersions(version, entries[0].Version) < 0 {
		e := entries[0]
		e.Version = version
		return append([]Entry{e}, entries[1:]...)
	}
	return entries
}

// DebianChangelog writes entries in debian/changelog format.
func DebianChangelog(entries []Entry) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s (%s) %s; urgency=%s\n\n", e.Package, e.Version, e.Distribution, e.Urgency)
		for _, l := range e.Changes {
			b.WriteString(l + "\n")
		}
		fmt.Fprintf(&b, "\n -- %s  %s\n", e.Maintainer, e.Date.Format(debianDate))
	}
	return b.String()
}

// RPMChangelog writes entries as a spec file's %changelog body.
func RPMChangelog(entries []Entry) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "* %s %s - %s\n", e.Date.UTC().Format("Mon Jan 02 2006"), e.Maintainer, e.Version)
		for _, l := range e.Changes {
			t := strings.TrimSpace(l)
			switch {
			case t == "":
			case strings.HasPrefix(t, "* "):
				b.WriteString("- " + strings.TrimPrefix(t, "* ") + "\n")
			default:
				b.WriteString("  " + t + "\n")
			}
		}
	}
	return b.String()
}

// CompareVersions orders two Debian versions (epoch:upstream-revision) as
// dpkg --compare-versions does: <0, 0 or >0.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

func splitVersion(v string) (epoch int, upstream, revision string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		fmt.Sscan(v[:i], &epoch)
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// order is dpkg's weight of a non-digit: ~ before the end, before letters,
// before everything else.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return int(c)
	}
	return int(c) + 256
}

func compareFragment(a, b string) int {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for a != "" || b != "" {
		// The non-digit prefixes, character by character.
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			ca, cb := 0, 0
			if a != "" && !isDigit(a[0]) {
				ca = order(a[0])
			}
			if b != "" && !isDigit(b[0]) {
				cb = order(b[0])
			}
			if ca != cb {
				return ca - cb
			}
			if a != "" && !isDigit(a[0]) {
				a = a[1:]
			}
			if b != "" && !isDigit(b[0]) {
				b = b[1:]
			}
		}
		// Then the numbers.
		for a != "" && a[0] == '0' {
			a = a[1:]
		}
		for b != "" && b[0] == '0' {
			b = b[1:]
		}
		na, nb := 0, 0
		for na < len(a) && isDigit(a[na]) {
			na++
		}
		for nb < len(b) && isDigit(b[nb]) {
			nb++
		}
		if na != nb {
			return na - nb
		}
		if c := strings.Compare(a[:na], b[:nb]); c != 0 {
			return c
		}
		a, b = a[na:], b[nb:]
	}
	return 0
}
