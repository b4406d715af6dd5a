package qemuargs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Caps says which of the options that upstream QEMU lacks a binary takes.
type Caps struct {
	Realtime bool // -realtime mlock=on|off (removed in QEMU 6.0)
	VCPU     bool // -vcpu N,affinity=MASK,prio=P (vendor-patched QEMUs only)
}

// ParseHelp reads the output of "QEMU -help", where every option's synopsis
// starts a line with the option itself.
func ParseHelp(help []byte) Caps {
	var c Caps
	sc := bufio.NewScanner(bytes.NewReader(help))
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " ")
		switch name {
		case "-realtime":
			c.Realtime = true
		case "-vcpu":
			c.VCPU = true
		}
	}
	return c
}

// Probe runs "binary -help" and reads what it accepts, rather than
// guessing from a version number: distributions and vendors patch QEMU.
func Probe(ctx context.Context, binary string) (Caps, error) {
	cmd := exec.CommandContext(ctx, binary, "-help")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg != "" {
			return Caps{}, fmt.Errorf("probing %s -help: %w: %s", binary, err, msg)
		}
		return Caps{}, fmt.Errorf("probing %s -help: %w", binary, err)
	}
	if !bytes.Contains(out, []byte("\n-m ")) {
		return Caps{}, fmt.Errorf("probing %s -help: the output does not look like QEMU's", binary)
	}
	return ParseHelp(out), nil
}
