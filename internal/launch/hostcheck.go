package launch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/hostcheck"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// hostVM is what the planned guest asks of the host.
func (p *Plan) hostVM() hostcheck.VM {
	vm := hostcheck.VM{EmulatorCPUs: p.EmulatorCPUs, IOThreads: p.IOThreadCPUs,
		LocksMemory: p.LocksMemory, Memory: p.Memory, HostCPUs: p.VCPUCPUs}
	for i := range max(p.VCPUs, 1) {
		v := hostcheck.VCPU{Index: i, CPUs: p.VCPUCPUs}
		for _, pin := range p.Pins {
			if pin.VCPU == i {
				v.Prio = pin.Prio
				if !pin.CPUs.Empty() {
					v.CPUs = pin.CPUs
				}
			}
		}
		if v.Prio > 0 {
			vm.RT = append(vm.RT, v)
		} else {
			vm.Others = append(vm.Others, v)
		}
	}
	return vm
}

// hostFindings checks this host for the planned guest, and the other VMs
// running on it that the launchers' run directory names.
func (p *Plan) hostFindings() ([]string, error) {
	root := p.cfg.hostRoot
	if root == "" {
		root = "/"
	}
	h, err := hostcheck.Read(root)
	if err != nil {
		return nil, fmt.Errorf("checking the host: %w", err)
	}
	if len(p.hostVM().RT) > 0 {
		// This VM, when it runs already, is not another one.
		own := ""
		if id, err := rundir.NetnsID(); err == nil {
			own = filepath.Join(rundir.NetnsDir(id), rundir.VMLock(p.Name))
		}
		h.VMs, err = hostcheck.ReadVMs(root, p.RunDir, os.Getpid(), own)
		if errors.Is(err, fs.ErrPermission) {
			h.VMsUnread = err
		} else if err != nil {
			return nil, fmt.Errorf("checking the host: %w", err)
		}
	}
	found := hostcheck.Check(h, p.hostVM())
	kvm, err := p.kvmFinding()
	if err != nil {
		return nil, fmt.Errorf("checking the host: %w", err)
	}
	if kvm != "" {
		found = append(found, kvm)
	}
	return found, nil
}

// CheckHost serves --check-host: the findings, one line each, or what
// was found in order. Under --strict, findings fail it.
func (p *Plan) CheckHost(w io.Writer) (int, error) {
	found, err := p.hostFindings()
	if err != nil {
		return 1, err
	}
	vm := p.hostVM()
	for _, f := range found {
		fmt.Fprintf(w, "warning: %s\n", f)
	}
	if len(found) == 0 {
		if len(vm.RT) == 0 {
			fmt.Fprintln(w, "no vCPU asks for SCHED_FIFO (-vcpu N,prio=P, [VCPU] Priority=): nothing more to check")
		} else {
			var rt cpuset.Set
			for _, v := range vm.RT {
				for _, c := range v.CPUs.CPUs() {
					rt.Add(c)
				}
			}
			fmt.Fprintf(w, "ok: CPUs %s of the SCHED_FIFO vCPUs are isolated and nohz_full, real-time throttling is off, the memory lock and thread placement fit, and no other VM's threads run there\n", rt)
		}
	}
	if p.cfg.Strict && len(found) > 0 {
		return 1, fmt.Errorf("host check: %d warning(s), refused under --strict", len(found))
	}
	return 0, nil
}

// warnHost runs the host check before a start when a vCPU asks for
// SCHED_FIFO or the guest's memory is to be locked: warnings on stderr,
// a refusal under --strict.
func (p *Plan) warnHost() error {
	if len(p.hostVM().RT) == 0 && !p.LocksMemory && !wantsKVM(p.Args) {
		return nil
	}
	found, err := p.hostFindings()
	if err != nil {
		if p.cfg.Strict {
			return err
		}
		fmt.Fprintf(p.cfg.Stderr, "qemu-launch: warning: %v\n", err)
		return nil
	}
	for _, f := range found {
		fmt.Fprintf(p.cfg.Stderr, "qemu-launch: warning: %s\n", f)
	}
	if p.cfg.Strict && len(found) > 0 {
		return fmt.Errorf("host check: %d warning(s) above, refused under --strict (qemu-launch --check-host lists them)", len(found))
	}
	return nil
}
