package bench

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
)

// A RateResult is the throughput of one TCP transfer each way through a
// port limited to Rate both ways.
type RateResult struct {
	Rate     uint64 // bits per second, configured
	Bytes    int64  // per transfer
	To, From Stat   // measured bits per second, to and from the guest
}

// Rates measures, for each rate, TCP through a Linux bridge port limited
// to it both ways: the host's end is a bridge with an address, the guest
// a veth in a namespace of its own, behind the port the bridge kind
// configures as for a tap. Each transfer lasts about secs seconds at the
// rate; rounds of them give the figures.
func Rates(rates []uint64, secs float64, rounds int, log io.Writer) ([]RateResult, error) {
	host, err := newNS()
	if err != nil {
		return nil, err
	}
	defer host.close()
	guest, err := newNS()
	if err != nil {
		return nil, err
	}
	defer guest.close()
	br, err := host.addBridge("virbr0")
	if err != nil {
		return nil, err
	}
	if err := addAddr(host.h, br, "10.0.0.1/24"); err != nil {
		return nil, err
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "port0", MasterIndex: br.Index}, PeerName: "eth0",
		PeerNamespace: netlink.NsFd(guest.nsh)}
	if err := host.h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("add veth: %w", err)
	}
	eth, err := guest.h.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	if err := addAddr(guest.h, eth, "10.0.0.2/24"); err != nil {
		return nil, err
	}
	for _, l := range []struct {
		h    *netlink.Handle
		name string
	}{{host.h, "port0"}, {guest.h, "eth0"}} {
		ll, err := l.h.LinkByName(l.name)
		if err == nil {
			err = l.h.LinkSetUp(ll)
		}
		if err != nil {
			return nil, fmt.Errorf("%s up: %w", l.name, err)
		}
	}
	var out []RateResult
	for _, rate := range rates {
		if err := limitPort(host, rate); err != nil {
			return nil, err
		}
		r := RateResult{Rate: rate, Bytes: int64(float64(rate) / 8 * secs)}
		var to, from []time.Duration
		for i := 0; i < rounds; i++ {
			d, err := transfer(guest, host, "10.0.0.1:5001", r.Bytes)
			if err != nil {
				return nil, fmt.Errorf("from the guest at %s: %w", bridge.FormatRate(rate), err)
			}
			from = append(from, d)
			if d, err = transfer(host, guest, "10.0.0.2:5002", r.Bytes); err != nil {
				return nil, fmt.Errorf("to the guest at %s: %w", bridge.FormatRate(rate), err)
			}
			to = append(to, d)
		}
		r.To, r.From = bitsPerSecond(to, r.Bytes), bitsPerSecond(from, r.Bytes)
		fmt.Fprintf(log, "bench: rate %s: to the guest %.3g bit/s, from it %.3g bit/s (medians)\n",
			bridge.FormatRate(rate), r.To.Median, r.From.Median)
		out = append(out, r)
	}
	return out, nil
}

// limitPort gives port0 of host the limit rate both ways, as qemu-ifup
// gives a tap, replacing the rules of an earlier rate.
func limitPort(host *ns, rate uint64) (err error) {
	host.do(func() {
		b, ferr := bridge.Host{}.Find(host.conn, "virbr0")
		if ferr != nil {
			err = ferr
			return
		}
		port, lerr := host.conn.ByName("port0")
		if lerr != nil {
			err = lerr
			return
		}
		s := bridge.PortSettings{Inbound: bridge.Limit{Rate: rate}, Outbound: bridge.Limit{Rate: rate}}
		steps, jerr := b.Join(host.conn, port, b, 0, s)
		if jerr != nil {
			err = jerr
			return
		}
		for _, st := range steps {
			if err = st.Apply(host.conn, port); err != nil {
				return
			}
		}
	})
	return err
}

// transfer sends n bytes over TCP from a socket of src to addr, listened
// on in dst, and returns the time from the connection until the receiver
// read the last byte.
func transfer(src, dst *ns, addr string, n int64) (time.Duration, error) {
	var l net.Listener
	var err error
	dst.do(func() { l, err = net.Listen("tcp4", addr) })
	if err != nil {
		return 0, err
	}
	defer l.Close()
	type result struct {
		d   time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		t0 := time.Now()
		got, err := io.Copy(io.Discard, c)
		if err == nil && got != n {
			err = fmt.Errorf("received %d of %d bytes", got, n)
		}
		done <- result{time.Since(t0), err}
	}()
	var c net.Conn
	src.do(func() { c, err = net.DialTimeout("tcp4", addr, 10*time.Second) })
	if err != nil {
		return 0, err
	}
	_, err = io.CopyN(c, zeros{}, n)
	c.Close()
	if err != nil {
		return 0, err
	}
	r := <-done
	return r.d, r.err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func bitsPerSecond(ds []time.Duration, n int64) Stat {
	rates := make([]float64, len(ds))
	for i, d := range ds {
		rates[i] = float64(n*8) / d.Seconds()
	}
	return stat(rates)
}

func addAddr(h *netlink.Handle, l netlink.Link, cidr string) error {
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", cidr, l.Attrs().Name, err)
	}
	return nil
}
