package ifscript

import "github.com/qemu-tap-helpers/qemu-tap-helpers/internal/proc"

// OS returns the System of this process.
func OS() *System { return &System{Process: proc.Current()} }
