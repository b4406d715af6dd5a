package pkgmeta

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A License is what one module is distributed under.
type License struct {
	SPDX      string   // SPDX identifier of LICENSE's text
	Text      string   // LICENSE as the module ships it
	Notice    string   // NOTICE, which Apache-2.0 section 4(d) says to pass on
	Copyright []string // "2015-2022 CoreOS, Inc.", one per holder
}

// licenseFiles are the names a module's license goes by, first found wins.
var licenseFiles = []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING", "LICENCE"}

// ReadLicense reads a module's license and copyright notices from its
// source directory. A license it cannot tell is an error: a human has to
// look at it, and teach Classify.
func ReadLicense(m Module) (License, error) {
	var l License
	for _, name := range licenseFiles {
		data, err := os.ReadFile(filepath.Join(m.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return l, fmt.Errorf("license of %s: %w", m.Path, err)
		}
		l.Text = string(data)
		break
	}
	if l.Text == "" {
		return l, fmt.Errorf("license of %s: no %s in %s", m.Path, strings.Join(licenseFiles, " or "), m.Dir)
	}
	l.SPDX = Classify(l.Text)
	if l.SPDX == "" {
		return l, fmt.Errorf("license of %s: cannot tell which license %s holds", m.Path, filepath.Join(m.Dir, "LICENSE"))
	}
	if data, err := os.ReadFile(filepath.Join(m.Dir, "NOTICE")); err == nil {
		l.Notice = strings.TrimSpace(string(data))
	}
	// Notices in the license files first; failing those, in the sources.
	l.Copyright = Holders(l.Text + "\n" + l.Notice)
	if len(l.Copyright) == 0 && m.Path != Std {
		text, err := sourceHeaders(m.Dir)
		if err != nil {
			return l, fmt.Errorf("copyright of %s: %w", m.Path, err)
		}
		l.Copyright = Holders(text)
	}
	return l, nil
}

// Classify names the license a text holds, by the phrases that set the
// common licenses apart; "" if it is none of them.
func Classify(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	has := func(s ...string) bool {
		for _, p := range s {
			if !strings.Contains(t, p) {
				return false
			}
		}
		return true
	}
	switch {
	case has("Apache License", "Version 2.0, January 2004"):
		return "Apache-2.0"
	case has("Redistribution and use in source and binary forms", "Neither the name"):
		return "BSD-3-Clause"
	case has("Redistribution and use in source and binary forms"):
		return "BSD-2-Clause"
	case has("Permission is hereby granted, free of charge"):
		return "MIT"
	case has("Permission to use, copy, modify, and/or distribute this software for any purpose"):
		return "ISC"
	case has("Mozilla Public License Version 2.0"):
		return "MPL-2.0"
	}
	return ""
}

// copyrightLine is a copyright notice: years, then the holder.
var copyrightLine = regexp.MustCompile(`(?i)copyright\s+(?:\(c\)\s*)?((?:\d{4}\s*(?:[-,]\s*)?)+)\s*(.*)`)

// Holders collects the copyright notices in text into one line per
// holder, with the range of years seen: "2015-2022 CoreOS, Inc.".
func Holders(text string) []string {
	type span struct{ from, to int }
	years := map[string]span{}
	for _, line := range strings.Split(text, "\n") {
		m := copyrightLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		holder := strings.TrimSpace(m[2])
		holder = strings.TrimSuffix(holder, "All rights reserved.")
		holder = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(holder), "."))
		if holder == "" {
			continue
		}
		for _, y := range regexp.MustCompile(`\d{4}`).FindAllString(m[1], -1) {
			n, _ := strconv.Atoi(y)
			s, ok := years[holder]
			if !ok {
				s = span{n, n}
			}
			s.from, s.to = min(s.from, n), max(s.to, n)
			years[holder] = s
		}
	}
	var out []string
	for h, s := range years {
		y := strconv.Itoa(s.from)
		if s.to != s.from {
			y += "-" + strconv.Itoa(s.to)
		}
		out = append(out, y+" "+h)
	}
	slices.Sort(out)
	return out
}

// sourceHeaders is the comment header of every non-test Go file of a
// module (its first lines), where notices usually are.
func sourceHeaders(dir string) (string, error) {
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for i := 0; i < 5 && sc.Scan(); i++ {
			b.WriteString(sc.Text())
			b.WriteByte('\n')
		}
		return sc.Err()
	})
	return b.String(), err
}
