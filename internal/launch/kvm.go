package launch

import (
	"strings"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/kvm"
)

// wantsKVM reports whether QEMU's arguments ask for KVM: -enable-kvm,
// -accel kvm (also accel=kvm), or -machine ...,accel=kvm (the first of a
// kvm:tcg list).
func wantsKVM(args []string) bool {
	for i, a := range args {
		opt, ok := strings.CutPrefix(a, "-")
		if !ok {
			continue
		}
		opt = strings.TrimPrefix(opt, "-")
		if opt == "enable-kvm" {
			return true
		}
		if i+1 >= len(args) {
			break
		}
		v := args[i+1]
		switch opt {
		case "accel":
			first, _, _ := strings.Cut(v, ",")
			if strings.TrimPrefix(first, "accel=") == "kvm" {
				return true
			}
		case "machine", "M":
			for _, kv := range strings.Split(v, ",") {
				if acc, ok := strings.CutPrefix(kv, "accel="); ok {
					first, _, _ := strings.Cut(acc, ":")
					return first == "kvm"
				}
			}
		}
	}
	return false
}

// kvmFinding is the host check's line about KVM when the VM asks for it
// and this host's /dev/kvm cannot run a guest; "" otherwise.
func (p *Plan) kvmFinding() (string, error) {
	if !wantsKVM(p.Args) {
		return "", nil
	}
	root := p.cfg.hostRoot
	if root == "" {
		root = "/"
	}
	err := kvm.Check(root, root == "/")
	if prob, ok := err.(*kvm.Problem); ok {
		return "kvm: the VM asks for KVM, but " + prob.Reason + ", so the guest would hang after the firmware: " + kvm.Advice, nil
	}
	return "", err
}
