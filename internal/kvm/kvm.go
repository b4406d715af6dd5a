// Package kvm tells whether /dev/kvm can run a guest. A /dev/kvm that
// exists is not enough: in a virtual machine whose hypervisor does not
// pass virtualization on (nested virtualization off), the device may be
// there while the CPU shows no vmx or svm, and QEMU's guest then hangs
// silently after the firmware.
//
// The check reads the CPU flags from a root directory ("/" for this
// host), so it is tested against sample /proc trees, and on the real
// /dev/kvm creates a VM and one vCPU and runs a single hlt instruction.
package kvm

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Paths under the root directory.
const (
	DevicePath  = "dev/kvm"
	CPUInfoPath = "proc/cpuinfo"
)

// Advice is what to do when KVM cannot run a guest, in command-line and
// VM-file terms.
const Advice = "use -accel tcg (Accel=tcg in a VM file) instead of -enable-kvm or -accel kvm"

// probeTimeout bounds the test run of one hlt instruction.
const probeTimeout = 2 * time.Second

// A Problem says why KVM cannot run a guest here.
type Problem struct {
	Reason string
}

func (p *Problem) Error() string {
	return "KVM cannot run a guest on this host: " + p.Reason + "; " + Advice
}

// Check returns a *Problem when /dev/kvm under root is missing or cannot
// run a guest, nil when it can. With probe, the device is also opened
// and made to run one instruction (only meaningful for root "/").
func Check(root string, probe bool) error {
	dev := filepath.Join(root, DevicePath)
	if _, err := os.Stat(dev); errors.Is(err, fs.ErrNotExist) {
		return &Problem{"there is no /dev/kvm (load kvm_intel or kvm_amd, and enable virtualization in the firmware)"}
	}
	flags, err := cpuFlags(filepath.Join(root, CPUInfoPath))
	if err != nil {
		return err
	}
	if flags != nil && !flags["vmx"] && !flags["svm"] {
		reason := "the CPU shows no virtualization extensions although /dev/kvm exists (no vmx or svm in /proc/cpuinfo)"
		if flags["hypervisor"] {
			reason += ": this is a virtual machine whose hypervisor does not offer nested virtualization"
		}
		return &Problem{reason}
	}
	if !probe {
		return nil
	}
	return runHLT(dev, probeTimeout)
}

// cpuFlags returns the flags of the first CPU in cpuinfo, nil when the
// file has no flags line (another architecture).
func cpuFlags(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		flags := map[string]bool{}
		for _, fl := range strings.Fields(val) {
			flags[fl] = true
		}
		return flags, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return nil, nil
}
