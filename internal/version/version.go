// Package version holds the version string stamped into the binaries at
// build time with -ldflags "-X .../internal/version.Version=...".
package version

// Version is the build's version. It stays "devel" for builds that were not
// stamped (go run, go test).
var Version = "devel"
