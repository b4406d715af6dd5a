package launch

import (
	"fmt"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifscript"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
)

// A tapPort is what qemu-ifup will make of a tap the launcher wired, as
// foreseen before QEMU starts.
type tapPort struct {
	ID  string
	MTU int
	// LogicalPort and Wait: an OVN logical port, and how long qemu-ifup
	// may wait for OVN to install it.
	LogicalPort string
	Wait        time.Duration
}

// foresee works out each wired tap's port as qemu-ifup will make it
// (package ifscript): its MTU, which the guest's virtio-net NIC is told
// (host_mtu) when it is not 1500, and an OVN logical port's wait, which
// QEMU's start-up may take. A tap whose port cannot be foreseen (a bridge
// not there yet) is left to qemu-ifup, which will say why.
func (p *Plan) foresee() {
	mtus := map[string]int{}
	for _, t := range p.Taps {
		port, mtu, err := ifscript.Predict(t.Ifname, t.Settings, p.cfg.Getenv)
		if err != nil {
			p.logf("%s: the tap's MTU is not known before QEMU starts (%v); QEMU's NIC is not told", t.Ifname, err)
			continue
		}
		mtus[t.ID] = mtu
		tp := tapPort{ID: t.ID, MTU: mtu, LogicalPort: port.LogicalPort}
		if tp.LogicalPort != "" {
			tp.Wait = port.OVNWait
			if tp.Wait <= 0 {
				tp.Wait = bridge.DefaultOVNWait
			}
		}
		p.ports = append(p.ports, tp)
	}
	p.Args, p.warnings = qemuargs.HostMTU(p.Args, mtus)
}

// ifupWait is how much longer QEMU's start-up may take for qemu-ifup's
// waits on OVN.
func (p *Plan) ifupWait() time.Duration {
	var d time.Duration
	for _, tp := range p.ports {
		d += tp.Wait
	}
	return d
}

// qmpTimeout bounds QEMU's start-up until its QMP monitor answers, the
// up-scripts' waits on OVN included.
func (p *Plan) qmpTimeout() time.Duration { return p.cfg.qmpTimeout() + p.ifupWait() }

// mtuActions describe, for the dry run, what the taps' MTUs and OVN
// logical ports add to the start.
func (p *Plan) mtuActions() []string {
	var a []string
	for _, tp := range p.ports {
		if tp.MTU != qemuargs.StandardMTU {
			a = append(a, fmt.Sprintf("netdev %s: qemu-ifup gives the tap MTU %d; a virtio-net NIC on it learns it (host_mtu)", tp.ID, tp.MTU))
		}
		if tp.LogicalPort != "" {
			a = append(a, fmt.Sprintf("netdev %s: qemu-ifup waits up to %s for OVN to install logical port %s; QEMU's start-up may take that much longer", tp.ID, tp.Wait, tp.LogicalPort))
		}
	}
	return a
}
