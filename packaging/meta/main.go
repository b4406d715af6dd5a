// Command meta writes the parts of the packages derived from the build:
// the copyright file of everything compiled into the binaries, the RPM
// License: and Provides: tags, the .deb's Static-Built-Using: field, and
// the changelog with the version being built on top. packaging/build runs
// it; see internal/pkgmeta.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/pkgmeta"
)

func main() {
	var o pkgmeta.Options
	epoch := flag.Int64("epoch", 0, "build time (SOURCE_DATE_EPOCH)")
	flag.StringVar(&o.ModCache, "modcache", "", "Go module cache (go env GOMODCACHE)")
	flag.StringVar(&o.GOROOT, "goroot", "", "GOROOT of the Go that built the binaries")
	flag.StringVar(&o.Changelog, "changelog", "packaging/changelog", "changelog, debian/changelog format")
	flag.StringVar(&o.News, "news", "packaging/NEWS", "NEWS, debian/changelog format")
	flag.StringVar(&o.Version, "version", "", "package version with revision (1.2.0-1)")
	flag.StringVar(&o.Upstream.Copyright, "copyright", "", "the project's copyright line")
	flag.StringVar(&o.Out, "out", "", "output directory")
	flag.Parse()
	o.Binaries = flag.Args()
	o.Date = time.Unix(*epoch, 0)
	o.Upstream.Name = "qemu-tap-helpers"
	o.Upstream.Contact = "qemu-tap-helpers maintainers <maintainers@users.noreply.r-seed-8ca4e9d4.example>"
	o.Upstream.Source = "https://github.com/qemu-tap-helpers/qemu-tap-helpers"
	o.Upstream.License = "Apache-2.0"
	if o.ModCache == "" || o.GOROOT == "" || o.Version == "" || o.Out == "" || o.Upstream.Copyright == "" || len(o.Binaries) == 0 {
		fmt.Fprintln(os.Stderr, "usage: meta -modcache DIR -goroot DIR -version V -copyright LINE -out DIR [-epoch N] [-changelog FILE] BINARY...")
		os.Exit(2)
	}
	if err := pkgmeta.Generate(o); err != nil {
		fmt.Fprintln(os.Stderr, "meta:", err)
		os.Exit(1)
	}
}
