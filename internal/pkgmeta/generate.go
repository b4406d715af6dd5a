package pkgmeta

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options are what Generate needs: the build, and the project's facts.
type Options struct {
	Binaries  []string // the static binaries going into the packages
	ModCache  string   // go env GOMODCACHE
	GOROOT    string   // go env GOROOT of the Go that built them
	Changelog string   // packaging/changelog, debian/changelog format
	News      string   // packaging/NEWS, the same format
	Version   string   // the package's full version: 1.2.0-1
	Date      time.Time
	Upstream  Upstream
	Out       string // directory for the generated files
}

// The files Generate writes into Options.Out.
const (
	FileCopyright        = "copyright"          // DEP-5, Debian flavour
	FileCopyrightRPM     = "copyright.rpm"      // DEP-5, pointing at LICENSE
	FileChangelogDebian  = "changelog.Debian"   // the .deb's changelog
	FileChangelogRPM     = "changelog.spec"     // %changelog body
	FileRPMTags          = "tags.spec"          // License: and Provides: lines
	FileStaticBuiltUsing = "static-built-using" // the .deb field's value
	FileModules          = "modules.txt"        // path version SPDX, one a line
	FileNewsDebian       = "NEWS.Debian"        // the .deb\'s NEWS
	FileNews             = "NEWS"               // the .rpm\'s
)

// Generate writes the license and changelog files of one build.
func Generate(o Options) error {
	mods, err := Modules(o.Binaries, o.ModCache, o.GOROOT)
	if err != nil {
		return err
	}
	if v, err := os.ReadFile(filepath.Join(o.GOROOT, "VERSION")); err == nil {
		if first, _, _ := strings.Cut(string(v), "\n"); first != mods[0].Version {
			return fmt.Errorf("binaries built with %s, but %s is %s", mods[0].Version, o.GOROOT, first)
		}
	}
	lic := map[string]License{}
	var list strings.Builder
	for _, m := range mods {
		l, err := ReadLicense(m)
		if err != nil {
			return err
		}
		lic[m.Path] = l
		fmt.Fprintf(&list, "%s %s %s\n", m.Path, m.Version, l.SPDX)
	}
	text, err := os.ReadFile(o.Changelog)
	if err != nil {
		return err
	}
	entries, err := ParseChangelog(string(text))
	if err != nil {
		return fmt.Errorf("%s: %w", o.Changelog, err)
	}
	entries = ForVersion(entries, o.Version, o.Date)
	text, err = os.ReadFile(o.News)
	if err != nil {
		return err
	}
	news, err := ParseChangelog(string(text))
	if err != nil {
		return fmt.Errorf("%s: %w", o.News, err)
	}
	news = NewsForVersion(news, o.Version)

	var tags strings.Builder
	fmt.Fprintf(&tags, "License: %s\n", SPDXExpression(o.Upstream.License, lic))
	for _, p := range BundledProvides(mods) {
		fmt.Fprintf(&tags, "Provides: %s\n", p)
	}
	files := map[string]string{
		FileCopyright:        Copyright(o.Upstream, mods, lic, Debian),
		FileCopyrightRPM:     Copyright(o.Upstream, mods, lic, RPM),
		FileChangelogDebian:  DebianChangelog(entries),
		FileChangelogRPM:     RPMChangelog(entries),
		FileRPMTags:          tags.String(),
		FileStaticBuiltUsing: StaticBuiltUsing(mods) + "\n",
		FileModules:          list.String(),
		FileNewsDebian:       DebianChangelog(news),
		FileNews:             DebianChangelog(news),
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(o.Out, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}
