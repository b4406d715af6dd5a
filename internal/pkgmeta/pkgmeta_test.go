package pkgmeta

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"1.0-1", "1.0-1", 0},
		{"0~git12.gabc-1", "0.1.0-1", -1},
		{"0.1.0~rc1-1", "0.1.0-1", -1},
		{"0.1.0-1", "0.1.0+git4.gabc-1", -1},
		{"0.1.0+git4.gabc-1", "0.1.0+git4.gabc.dirty-1", -1},
		{"0.1.0+dirty-1", "0.1.0+git1.gabc-1", -1}, // 'd' sorts before 'g'
		{"0.1.0~rc1-1", "0~git5.gabc-1", 1},
		{"1.10-1", "1.9-1", 1},
		{"1:0.1-1", "2.0-1", 1},
		{"1.0a-1", "1.0-1", 1},
		{"1.0-2", "1.0-10", -1},
	}
	for _, tt := range tests {
		got := CompareVersions(tt.a, tt.b)
		sign := func(n int) int {
			switch {
			case n < 0:
				return -1
			case n > 0:
				return 1
			}
			return 0
		}
		want := tt.want
		if sign(got) != want {
			t.Errorf("CompareVersions(%q, %q) = %d, want sign %d", tt.a, tt.b, got, want)
		}
		// dpkg is the reference, where it is installed.
		if _, err := exec.LookPath("dpkg"); err == nil {
			op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}[want]
			if err := exec.Command("dpkg", "--compare-versions", tt.a, op, tt.b).Run(); err != nil {
				t.Errorf("dpkg disagrees: %s %s %s is false", tt.a, op, tt.b)
			}
		}
	}
}

func TestDebianName(t *testing.T) {
	tests := []struct {
		mod  Module
		want string
	}{
		{Module{Path: "github.com/coreos/go-systemd/v22"}, "golang-github-coreos-go-systemd"},
		{Module{Path: "github.com/vishvananda/netlink"}, "golang-github-vishvananda-netlink"},
		{Module{Path: "golang.org/x/sys"}, "golang-golang-x-sys"},
		{Module{Path: "github.com/BurntSushi/toml"}, "golang-github-burntsushi-toml"},
		{Module{Path: "gopkg.in/yaml.v3"}, "golang-gopkg-yaml.v3"},
		{Module{Path: Std, Version: "go1.26.8"}, "golang-1.26"},
	}
	for _, tt := range tests {
		if got := DebianName(tt.mod); got != tt.want {
			t.Errorf("DebianName(%s) = %q, want %q", tt.mod.Path, got, tt.want)
		}
	}
	for v, want := range map[string]string{"v22.7.0": "22.7.0", "v0.0.0-20240101000000-abcdef123456": "0.0.0~20240101000000~abcdef123456", "go1.26.8": "1.26.8", "v2.0.0+incompatible": "2.0.0"} {
		if got := PackageVersion(Module{Version: v}); got != want {
			t.Errorf("PackageVersion(%s) = %q, want %q", v, got, want)
		}
	}
}

func TestClassifyAndHolders(t *testing.T) {
	tests := []struct {
		text    string
		spdx    string
		holders []string
	}{
		{"Apache License\n Version 2.0, January 2004\n", "Apache-2.0", nil},
		{"Copyright 2009 The Go Authors.\n\nRedistribution and use in source and binary forms ...\n   * Neither the name of Google LLC", "BSD-3-Clause", []string{"2009 The Go Authors"}},
		{"Copyright (c) 2015, 2018 A B\nRedistribution and use in source and binary forms", "BSD-2-Clause", []string{"2015-2018 A B"}},
		{"// Copyright 2015 CoreOS, Inc.\n// Copyright 2022 CoreOS, Inc.\n// Copyright 2015 Red Hat, Inc. All rights reserved.\nPermission is hereby granted, free of charge", "MIT", []string{"2015 Red Hat, Inc", "2015-2022 CoreOS, Inc"}},
		{"Some license of its own", "", nil},
	}
	for _, tt := range tests {
		if got := Classify(tt.text); got != tt.spdx {
			t.Errorf("Classify(%.30q) = %q, want %q", tt.text, got, tt.spdx)
		}
		if diff := cmp.Diff(tt.holders, Holders(tt.text)); diff != "" {
			t.Errorf("Holders(%.30q) (-want +got):\n%s", tt.text, diff)
		}
	}
}

const changelog = `qemu-tap-helpers (0.1.0-1) unstable; urgency=medium

  * First release,
    two lines.

 -- A B <a@example.com>  Thu, 26 Nov 2026 17:00:00 +0000
`

func TestForVersion(t *testing.T) {
	entries, err := ParseChangelog(changelog)
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		version string
		want    string // DebianChangelog's first lines
	}{
		{"0.1.0-1", "qemu-tap-helpers (0.1.0-1) unstable; urgency=medium\n\n  * First release,"},
		{"0~git12.gabc-1", "qemu-tap-helpers (0~git12.gabc-1) unstable; urgency=medium\n\n  * Development snapshot on the way to 0.1.0.\n  * First release,"},
		{"0.1.0+git3.gabc-1", "qemu-tap-helpers (0.1.0+git3.gabc-1) unstable; urgency=medium\n\n  * Development snapshot after 0.1.0.\n\n -- A B <a@example.com>  Sun, 29 Nov 2026 10:00:00 +0000\n\nqemu-tap-helpers (0.1.0-1)"},
	}
	for _, tt := range tests {
		got := DebianChangelog(ForVersion(entries, tt.version, date))
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("ForVersion %s:\n%s\nwant it to start\n%s", tt.version, got, tt.want)
		}
		// What it writes it reads back.
		if _, err := ParseChangelog(got); err != nil {
			t.Errorf("ForVersion %s: %v", tt.version, err)
		}
	}
	rpm := RPMChangelog(entries)
	if want := "* Thu Nov 26 2026 A B <a@example.com> - 0.1.0-1\n- First release,\n  two lines.\n"; rpm != want {
		t.Errorf("RPMChangelog (-want +got):\n%s", cmp.Diff(want, rpm))
	}
	if _, err := ParseChangelog("qemu-tap-helpers (1.0-1) unstable; urgency=low\n\n  * x\n"); err == nil {
		t.Error("ParseChangelog accepted an entry without its trailer")
	}
}
