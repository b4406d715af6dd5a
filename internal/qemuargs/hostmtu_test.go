package qemuargs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHostMTU(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		mtus     map[string]int
		want     []string
		warnings int
	}{
		{
			name: "virtio-net told a tap MTU other than 1500",
			args: []string{"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01", "-netdev", "tap,id=n0"},
			mtus: map[string]int{"n0": 1442},
			want: []string{"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,host_mtu=1442", "-netdev", "tap,id=n0"},
		},
		{
			name: "1500 and unknown MTUs leave the command alone",
			args: []string{"-device", "virtio-net-pci,netdev=n0", "-device", "virtio-net-pci,netdev=n1", "-netdev", "tap,id=n0", "-netdev", "tap,id=n1"},
			mtus: map[string]int{"n0": 1500, "n1": 0},
			want: []string{"-device", "virtio-net-pci,netdev=n0", "-device", "virtio-net-pci,netdev=n1", "-netdev", "tap,id=n0", "-netdev", "tap,id=n1"},
		},
		{
			name: "a host_mtu given stays",
			args: []string{"-device", "virtio-net-pci,netdev=n0,host_mtu=1400"},
			mtus: map[string]int{"n0": 9000},
			want: []string{"-device", "virtio-net-pci,netdev=n0,host_mtu=1400"},
		},
		{
			name:     "e1000 gets a warning",
			args:     []string{"-device", "e1000,netdev=n0"},
			mtus:     map[string]int{"n0": 1442},
			want:     []string{"-device", "e1000,netdev=n0"},
			warnings: 1,
		},
		{
			name:     "a -nic has no device to tell",
			args:     []string{"-nic", "tap,id=n0,model=virtio-net-pci", "-device", "virtio-net-device,netdev=n1"},
			mtus:     map[string]int{"n0": 9000, "n1": 9000},
			want:     []string{"-nic", "tap,id=n0,model=virtio-net-pci", "-device", "virtio-net-device,netdev=n1,host_mtu=9000"},
			warnings: 1,
		},
		{
			name: "a value that looks like -device is not one",
			args: []string{"-append", "-device", "-device", "virtio-net-pci,netdev=n0"},
			mtus: map[string]int{"n0": 1442},
			want: []string{"-append", "-device", "-device", "virtio-net-pci,netdev=n0,host_mtu=1442"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings := HostMTU(tt.args, tt.mtus)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("args (-want +got):\n%s", d)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings %q, want %d", warnings, tt.warnings)
			}
		})
	}
}
