package ifscript

import (
	"os"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/privs"
)

// OS returns the System of this process: its streams, its environment
// unless privs.Secure, and the journal where journald listens.
func OS() *System {
	s := &System{Stdout: os.Stdout, Stderr: os.Stderr}
	if !privs.Secure() {
		s.Env = os.Getenv
	}
	if journalListening() && journal.Enabled() {
		s.Journal = func(msg string, pri int, fields map[string]string) error {
			return journal.Send(msg, journal.Priority(pri), fields)
		}
		s.StderrIsJournal, _ = journal.StderrIsJournalStream()
	}
	return s
}

// journalSocket is where journald listens (the path go-systemd dials).
const journalSocket = "/run/systemd/journal/socket"

// journalListening is a cheap first check for journal.Enabled, which sets up
// a socket and the runtime's network poller to find out: on a host without
// journald a stat is enough.
func journalListening() bool {
	_, err := os.Stat(journalSocket)
	return err == nil
}
