package ifscript

import (
	"os"

	"github.com/coreos/go-systemd/v22/journal"
)

// OS returns the System of this process: its streams, its environment
// unless Secure, and the journal where journald listens.
func OS() *System {
	s := &System{Stdout: os.Stdout, Stderr: os.Stderr}
	if !Secure() {
		s.Env = os.Getenv
	}
	if journal.Enabled() {
		s.Journal = func(msg string, pri int, fields map[string]string) error {
			return journal.Send(msg, journal.Priority(pri), fields)
		}
		s.StderrIsJournal, _ = journal.StderrIsJournalStream()
	}
	return s
}
