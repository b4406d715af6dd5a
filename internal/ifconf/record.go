package ifconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/unitfile"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// A Record is what qemu-launch wants for one tap it named: a file
// DIR/IFNAME.conf holding one [Interface] section with the keys of the
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

func recordPath(dir, ifname string) string {
	return filepath.Join(dir, ifname+".conf")
}

// ReadRecord returns the record for ifname, or nil if there is none.
func ReadRecord(dir, ifname string) (*Record, error) {
	p := recordPath(dir, ifname)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
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

// WriteRecord leaves s for qemu-ifup ifname, replacing any earlier record
// atomically so that a concurrent qemu-ifup never reads half a file.
func WriteRecord(dir, ifname string, s Settings) error {
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("record for %s: %w", ifname, err)
	}
	tmp, err := os.CreateTemp(dir, "."+ifname+".*")
	if err != nil {
		return fmt.Errorf("record for %s: %w", ifname, err)
	}
	_, werr := tmp.WriteString(b.String())
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record for %s: %w", ifname, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record for %s: %w", ifname, err)
	}
	if err := os.Rename(tmp.Name(), recordPath(dir, ifname)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record for %s: %w", ifname, err)
	}
	return nil
}

// RemoveRecord removes the record for ifname; a missing one is not an error.
func RemoveRecord(dir, ifname string) error {
	err := os.Remove(recordPath(dir, ifname))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record: %w", err)
	}
	return nil
}
