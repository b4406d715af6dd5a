// Package proc holds what a helper takes from the process it runs in: its
// streams, its environment (unless privileged by a file capability) and
// the journal.
package proc

import (
	"io"
	"os"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/journal"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/privs"
)

// A Process is what a helper's run touches besides the network.
type Process struct {
	Stdout, Stderr io.Writer
	// Env reads the environment; nil when it must not be trusted.
	Env func(string) string
	// Journal sends one entry; nil when no journal listens.
	Journal func(msg string, pri int, fields map[string]string) error
	// StderrIsJournal is set when stderr already goes to the journal, so
	// a message is not logged twice.
	StderrIsJournal bool
	// Secure is set when the helper runs with privileges its caller
	// lacks (a file capability): it then acts only for the caller.
	Secure bool
}

// Current returns this process's streams, its environment unless
// privs.Secure, and the journal where journald listens.
func Current() Process {
	p := Process{Stdout: os.Stdout, Stderr: os.Stderr, Secure: privs.Secure()}
	if !p.Secure {
		p.Env = os.Getenv
	}
	// The socket is left for the process's exit to close: a helper lives
	// for a few requests.
	if j, err := journal.Open(journal.Socket); err == nil {
		p.Journal = j.Send
		p.StderrIsJournal = journal.StderrIsJournal(p.Env)
	}
	return p
}
