package bridge

import (
	"fmt"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// The limit on the traffic to a guest is a token bucket filter (tc's
// tbf) as the root qdisc of its port: what the bridge sends the guest
// leaves through it.

// queueTime is how long, at the rate, the bytes waiting in the filter
// last: enough for TCP to keep the link busy.
const queueTime = 10 // a tenth of a second

// tbfOf is the filter that carries l.
func tbfOf(l Limit) link.TBF {
	burst := l.BurstBytes()
	return link.TBF{Rate: l.Rate / 8, Burst: uint32(burst), Limit: uint32(min(burst+l.Rate/8/queueTime, 1<<32-1))}
}

// sameTBF reports whether have is want, up to the rounding of the burst
// into the kernel's clock ticks.
func sameTBF(have, want link.TBF) bool {
	d := int64(have.Burst) - int64(want.Burst)
	return have.Rate == want.Rate && have.Limit == want.Limit && d*100 <= int64(want.Burst) && -d*100 <= int64(want.Burst)
}

// shapeSteps is the step that gives port the inbound limit in, or takes
// away the filter when in is none: none when all is as asked.
func shapeSteps(c *link.Conn, port *link.Link, in Limit) ([]Step, error) {
	var have *link.TBF
	if port.Qdisc == "tbf" {
		var err error
		if have, err = c.RootTBF(port); err != nil {
			return nil, fmt.Errorf("read the qdisc of %s: %w", port.Name, err)
		}
	}
	if !in.Set() {
		if have == nil {
			return nil, nil
		}
		return []Step{{
			Action: ActShape,
			Desc:   "remove the limit on traffic to the guest",
			Apply:  delTBF,
			Undo:   func(c *link.Conn, port *link.Link) error { return setTBF(c, port, *have) },
		}}, nil
	}
	want := tbfOf(in)
	if have != nil && sameTBF(*have, want) {
		return nil, nil
	}
	st := Step{
		Action: ActShape,
		Desc:   "limit traffic to the guest to " + in.String(),
		Apply:  func(c *link.Conn, port *link.Link) error { return setTBF(c, port, want) },
		Undo:   delTBF,
	}
	if have != nil {
		st.Undo = func(c *link.Conn, port *link.Link) error { return setTBF(c, port, *have) }
	}
	return []Step{st}, nil
}

// leaveShape is the step that removes port's filter when it leaves its
// bridge, or nil when it has none. Unless last, its undo puts it back.
func leaveShape(c *link.Conn, port *link.Link, last bool) (*Step, error) {
	if port.Qdisc != "tbf" {
		return nil, nil
	}
	have, err := c.RootTBF(port)
	if err != nil || have == nil {
		return nil, err
	}
	st := &Step{Action: ActShape, Desc: "remove the limit on traffic to the guest", Apply: delTBF}
	if !last {
		st.Undo = func(c *link.Conn, port *link.Link) error { return setTBF(c, port, *have) }
	}
	return st, nil
}

func setTBF(c *link.Conn, port *link.Link, t link.TBF) error {
	if err := c.SetRootTBF(port, t); err != nil {
		return fmt.Errorf("set tbf qdisc on %s: %w", port.Name, err)
	}
	return nil
}

func delTBF(c *link.Conn, port *link.Link) error {
	if err := c.DelRootQdisc(port); err != nil {
		return fmt.Errorf("remove the qdisc of %s: %w", port.Name, err)
	}
	return nil
}
