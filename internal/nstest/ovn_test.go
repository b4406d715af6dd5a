package nstest

import (
	"strings"
	"testing"
)

// TestOVNLab builds the lab with each tunnel type and checks what the
// helpers' OVN tests build on: two host-side ports, each bound on its own
// chassis, reach each other across the tunnel; the largest IP packet that
// crosses a 1500-byte underlay is 1500 less the encapsulation's overhead
// (58 bytes for Geneve with OVN's option, 50 for VXLAN), and one byte more
// is dropped.
func TestOVNLab(t *testing.T) {
	for _, tc := range []struct {
		encap   string
		largest int
	}{
		{"geneve", OVNUnderlayMTU - 58},
		{"vxlan", OVNUnderlayMTU - 50},
	} {
		t.Run(tc.encap, func(t *testing.T) {
			l := NewOVNLab(t, tc.encap)
			a := l.AddHypervisor(t, "hv1")
			b := l.AddHypervisor(t, "hv2")
			l.Meshed(t)
			l.Nbctl(t, "ls-add", "ls0")
			l.Nbctl(t, "lsp-add", "ls0", "p1", "--", "lsp-set-addresses", "p1", "02:00:00:00:01:01 192.168.122.21")
			l.Nbctl(t, "lsp-add", "ls0", "p2", "--", "lsp-set-addresses", "p2", "02:00:00:00:01:02 192.168.122.22")
			a.AddPort(t, "vm1", "p1", "02:00:00:00:01:01", "192.168.122.21/24", 1500)
			b.AddPort(t, "vm2", "p2", "02:00:00:00:01:02", "192.168.122.22/24", 1500)
			for port, hv := range map[string]*Hypervisor{"p1": a, "p2": b} {
				got := l.Sbctl(t, "--bare", "--columns=chassis", "find", "Port_Binding", "logical_port="+port)
				want := l.Sbctl(t, "--bare", "--columns=_uuid", "find", "Chassis", "name="+hv.Name)
				if got == "" || got != want {
					t.Errorf("port %s bound to chassis %q, want %s's %q", port, got, hv.Name, want)
				}
			}
			if out, err := a.Ping("192.168.122.22", tc.largest-28, 10); err != nil {
				t.Errorf("%d-byte IP packets do not cross: %v\n%s", tc.largest, err, out)
			}
			if out, err := a.Ping("192.168.122.22", tc.largest-27, 3); err == nil || !strings.Contains(out, "0 received") {
				t.Errorf("%d-byte IP packets cross the tunnel (ping: %v):\n%s", tc.largest+1, err, out)
			}
		})
	}
}
