package launch

import (
	"context"
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
)

// pin places each vCPU thread as its -vcpu option asked and reads it back.
func (r *run) pin(ctx context.Context) error {
	if len(r.Pins) == 0 {
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
		if !p.CPUs.Empty() {
			if err := sched.SetAffinity(tid, p.CPUs); err != nil {
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
		if (!p.CPUs.Empty() && !th.CPUs.Equal(p.CPUs)) || th.Policy != wantPol || th.Prio != p.Prio {
			return fmt.Errorf("vCPU %d: reads back as %v", p.VCPU, th)
		}
		r.logf("vCPU %d: %v", p.VCPU, th)
	}
	return nil
}
