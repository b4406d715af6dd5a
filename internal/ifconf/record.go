package ifconf

import (
	"bytes"
	"fmt"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// A Record is what qemu-launch wants for one tap it named: a file
// IFNAME.conf in the namespace's run directory (package rundir) holding
// one [Interface] section with the keys of the config file (Name=
// excepted). qemu-ifup reads it first; qemu-ifdown removes it.
type Record struct {
	Path     string
	Settings Settings
}

// ParseRecord parses the content of the record at path.
func ParseRecord(path string, data []byte) (*Record, error) {
	secs, err := unitfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := &Record{Path: path}
	for _, s := range secs {
		if s.Name != "Interface" {
			return nil, fmt.Errorf("%s:%d: unknown section [%s] (want [Interface])", path, s.Line, s.Name)
		}
		for _, e := range s.Entries {
			if err := r.Settings.setEntry(path, e); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// FormatRecord returns the content of a record holding s.
func FormatRecord(s Settings) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by qemu-launch for qemu-ifup; removed by qemu-ifdown.\n")
	b.ReadFrom(unit.SerializeSections([]*unit.UnitSection{{Section: "Interface", Entries: s.entries()}}))
	return b.Bytes()
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
	return ParseRecord(d.RecordPath(ifname), data)
}

// WriteRecord leaves s for qemu-ifup ifname in d, replacing any earlier
// record atomically so that a concurrent qemu-ifup never reads half a file.
func WriteRecord(d *rundir.Dir, ifname string, s Settings) error {
	if err := link.ValidateName(ifname); err != nil {
		return err
	}
	if err := d.WriteRecord(ifname, FormatRecord(s)); err != nil {
		return fmt.Errorf("record for %s: %w", ifname, err)
	}
	return nil
}

// RemoveRecord removes the record for ifname; a missing one is not an error.
func RemoveRecord(d *rundir.Dir, ifname string) error {
	return d.RemoveRecord(ifname)
}
