package qemuargs

// The translation of the options stock QEMU lacks: -realtime becomes
// -overcommit mem-lock=, -vcpu becomes pins the launcher carries out.

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/cpuset"
)

func (r *rewriter) realtime(val string) ([]string, error) {
	c, err := r.capsOf()
	if err != nil || c.Realtime {
		return nil, err
	}
	lock := "on" // -realtime's default
	for _, e := range parseOpts(val, "") {
		if e.key != "mlock" {
			return nil, fmt.Errorf("unknown -realtime option %q (only mlock=on|off)", e.key)
		}
		if e.val != "on" && e.val != "off" {
			return nil, fmt.Errorf("mlock=%s: want on or off", e.val)
		}
		lock = e.val
	}
	r.res.MemLock = lock
	return []string{"-overcommit", "mem-lock=" + lock}, nil
}

func (r *rewriter) vcpu(val string) ([]string, error) {
	c, err := r.capsOf()
	if err != nil || c.VCPU {
		return nil, err
	}
	var (
		p   Pin
		idx = false
	)
	for _, e := range parseOpts(val, "vcpunum") {
		switch e.key {
		case "vcpunum":
			n, err := strconv.Atoi(e.val)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("vCPU index %q is not a number", e.val)
			}
			p.VCPU, idx = n, true
		case "affinity":
			s, err := cpuset.ParseMask(e.val)
			if err != nil {
				return nil, err
			}
			p.CPUs = s
		case "prio":
			n, err := strconv.Atoi(e.val)
			if err != nil || n < 0 || n > 99 {
				return nil, fmt.Errorf("prio=%s: want 0 (normal policy) to 99 (SCHED_FIFO)", e.val)
			}
			p.Prio = n
		default:
			return nil, fmt.Errorf("unknown -vcpu option %q (want N,affinity=MASK,prio=P)", e.key)
		}
	}
	if !idx {
		return nil, errors.New("no vCPU index (want N,affinity=MASK,prio=P)")
	}
	if prev, dup := r.vcpus[p.VCPU]; dup {
		return nil, fmt.Errorf("vCPU %d already set by -vcpu %s", p.VCPU, prev)
	}
	r.vcpus[p.VCPU] = val
	r.res.Pins = append(r.res.Pins, p)
	return []string{}, nil
}

// maxVCPUs is far above any QEMU's limit; it keeps the arithmetic sane.
const maxVCPUs = 1 << 16

// smpCount is the number of vCPUs at start that -smp asks for.
func smpCount(v string) (int, error) {
	if v == "" {
		return 1, nil
	}
	prod := 1
	var cpus int
	for _, e := range parseOpts(v, "cpus") {
		n, err := strconv.Atoi(e.val)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%s is not a number", e.key, e.val)
		}
		switch e.key {
		case "cpus":
			cpus = n
		case "sockets", "dies", "clusters", "cores", "threads", "books", "drawers":
			if n > 0 {
				prod *= n
			}
		}
		if cpus > maxVCPUs || prod > maxVCPUs {
			return 0, fmt.Errorf("more than %d vCPUs", maxVCPUs)
		}
	}
	if cpus > 0 {
		return cpus, nil
	}
	return prod, nil
}
