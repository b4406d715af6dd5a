package launch

import (
	"context"
	"fmt"

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
		if !where.Empty() {
			if err := sched.SetAffinity(tid, where); err != nil {
				return fmt.Errorf("vCPU %d: %w", p.VCPU, err)
			}
		}
		if err := sched.SetPriority(tid, p.Prio); err != nil {
			return fmt.Errorf("vCPU %d: %w", p.VCPU, err)
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
