package launch

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

// vcpuCPUs is where the thread of vCPU i goes: its -vcpu affinity, else
// VCPUCPUs when the emulator threads are placed apart (the vCPU threads
// start on the emulator CPUs with them), else nowhere in particular.
func (p *Plan) vcpuCPUs(i int) cpuset.Set {
	for _, pin := range p.Pins {
		if pin.VCPU == i && !pin.CPUs.Empty() {
			return pin.CPUs
		}
	}
	if !p.EmulatorCPUs.Empty() {
		return p.VCPUCPUs
	}
	return cpuset.Set{}
}

// pin places each vCPU thread as its -vcpu option asked and reads it back.
// With emulator placement, it places every vCPU thread.
func (r *run) pin(ctx context.Context) error {
	if len(r.Pins) == 0 && !r.placesThreads() {
		return nil
	}
	cpus, err := r.qmp.QueryCPUsFast(ctx)
	if err != nil {
		return fmt.Errorf("listing vCPU threads: %w", err)
	}
	tids := map[int]int{}
	for _, c := range cpus {
		tids[c.Index] = c.ThreadID
	}
	r.vcpuTIDs = tids
	pid := r.cmd.Process.Pid
	proc, err := r.qemuThreads()
	if err != nil {
		return err
	}
	defer proc.Close()
	pinned := map[int]int{} // thread -> vCPU
	for _, p := range r.Pins {
		tid, ok := tids[p.VCPU]
		if !ok {
			return fmt.Errorf("vCPU %d: QEMU lists no thread for it", p.VCPU)
		}
		if other, dup := pinned[tid]; dup {
			// Single-threaded TCG runs every vCPU on one thread.
			return fmt.Errorf("vCPUs %d and %d share thread %d: they cannot be placed apart", other, p.VCPU, tid)
		}
		pinned[tid] = p.VCPU
		if tid == pid {
			// A single-threaded accelerator runs vCPUs on the main
			// loop's thread: pinning it would pin all of QEMU.
			return fmt.Errorf("vCPU %d: QEMU runs it on its main thread %d, which cannot be pinned alone", p.VCPU, tid)
		}
		where := r.vcpuCPUs(p.VCPU)
		if err := setThread(proc, fmt.Sprintf("vCPU %d", p.VCPU), tid, sched.Setting{CPUs: where, Policy: true, Prio: p.Prio}); err != nil {
			return err
		}
		th, err := sched.Read(pid, tid)
		if err != nil {
			return fmt.Errorf("vCPU %d: %w", p.VCPU, err)
		}
		wantPol := sched.Other
		if p.Prio > 0 {
			wantPol = sched.FIFO
		}
		if (!where.Empty() && !th.CPUs.Equal(where)) || th.Policy != wantPol || th.Prio != p.Prio {
			return fmt.Errorf("vCPU %d: reads back as %v", p.VCPU, th)
		}
		r.logf("vCPU %d: %v", p.VCPU, th)
	}
	return nil
}

// qemuThreads holds QEMU's threads for placing them (sched.Process), so
// that a thread id QMP reports is acted on only while it is one of QEMU's:
// the QEMU user may answer on QMP for QEMU, and name any thread.
func (r *run) qemuThreads() (*sched.Process, error) {
	p, err := sched.OpenProcess(r.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	// Signal goes through a pidfd (or fails once QEMU is waited for):
	// success says QEMU was not reaped, so its pid named QEMU when
	// opened.
	if err := r.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		p.Close()
		return nil, fmt.Errorf("QEMU exited: %w", err)
	}
	return p, nil
}

// setThread gives thread tid, which QMP names for what ("vCPU 1"), the
// setting s; a tid that is not one of QEMU's threads is refused, with
// nothing changed.
func setThread(p *sched.Process, what string, tid int, s sched.Setting) error {
	err := p.Set(tid, s)
	var fe *sched.ForeignError
	if errors.As(err, &fe) && !fe.Undone {
		return fmt.Errorf("%s: QEMU's monitor names thread %d for it, which is not a thread of QEMU (pid %d): refusing to place it", what, tid, p.Pid)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
