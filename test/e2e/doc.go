// Package e2e holds the end-to-end tests: the seed's tap-networking
// procedure with a real QEMU, a real guest and the project's helpers, each
// test in a throwaway network namespace holding virbr0 192.168.122.1/24.
package e2e
