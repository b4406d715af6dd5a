package ifscript

import (
	"os"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/journal"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/privs"
)

// OS returns the System of this process: its streams, its environment
// unless privs.Secure, and the journal where journald listens.
func OS() *System {
	s := &System{Stdout: os.Stdout, Stderr: os.Stderr, Secure: privs.Secure()}
	if !s.Secure {
		s.Env = os.Getenv
	}
	// The socket is left for the process's exit to close: a helper lives
	// for a few requests.
	if j, err := journal.Open(journal.Socket); err == nil {
		s.Journal = j.Send
		s.StderrIsJournal = journal.StderrIsJournal(s.Env)
	}
	return s
}
