package ifconf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// A Record is what qemu-launch wants for one tap it named: a file
// IFNAME.conf in the namespace's run directory (package rundir) holding one [Interface] section with the keys of the
// config file (Name= excepted). qemu-ifup reads it first; qemu-ifdown
// removes it.
type Record struct {
	Path    string
	Entries []unitfile.Entry
}

// Settings are the values a Record can carry; zero values are left out.
type Settings struct {
	Bridge string
	MTU    int    // 0: the bridge's
	MAC    string // "high" or "keep"
}

// ReadRecord returns the record for ifname in d, or nil if there is none.
// A record its launcher left behind (killed before it could clean up) is
// removed, said through logf, and not used.
func ReadRecord(d *rundir.Dir, ifname string, logf func(string)) (*Record, error) {
	data, stale, err := d.ReadRecord(ifname)
	if stale != nil && logf != nil {
		logf(stale.Error())
	}
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	if data == nil {
		return nil, nil
	}
	p := d.RecordPath(ifname)
	secs, err := unitfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	r := &Record{Path: p}
	for _, s := range secs {
		if s.Name != "Interface" {
			return nil, fmt.Errorf("%s:%d: unknown section [%s] (want [Interface])", p, s.Line, s.Name)
		}
		for _, e := range s.Entries {
			if err := apply(&tap.Port{}, e); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", p, e.Line, err)
			}
		}
		r.Entries = append(r.Entries, s.Entries...)
	}
	return r, nil
}

// WriteRecord leaves s for qemu-ifup ifname in d, replacing any earlier
// record atomically so that a concurrent qemu-ifup never reads half a file.
func WriteRecord(d *rundir.Dir, ifname string, s Settings) error {
	if err := link.ValidateName(ifname); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# Written by qemu-launch for qemu-ifup; removed by qemu-ifdown.\n[Interface]\n")
	add := func(k, v string) error {
		if err := apply(&tap.Port{}, unitfile.Entry{Key: k, Value: v}); err != nil {
			return fmt.Errorf("record for %s: %w", ifname, err)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
		return nil
	}
	if s.Bridge != "" {
		if err := add("Bridge", s.Bridge); err != nil {
			return err
		}
	}
	if s.MTU != 0 {
		if err := add("MTU", strconv.Itoa(s.MTU)); err != nil {
			return err
		}
	}
	if s.MAC != "" {
		if err := add("MAC", s.MAC); err != nil {
			return err
		}
	}
	if err := d.WriteRecord(ifname, []byte(b.String())); err != nil {
		return fmt.Errorf("record for %s: %w", ifname, err)
	}
	return nil
}

// RemoveRecord removes the record for ifname; a missing one is not an error.
func RemoveRecord(d *rundir.Dir, ifname string) error {
	return d.RemoveRecord(ifname)
}
