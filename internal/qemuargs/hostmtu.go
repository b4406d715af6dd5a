package qemuargs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// StandardMTU is the MTU a guest's NIC assumes when nobody tells it
// otherwise.
const StandardMTU = 1500

// HostMTU tells the guest the MTU of its tap, as libvirt's <mtu> does:
// every virtio-net -device on a tap netdev whose MTU (mtus, by netdev id)
// is not StandardMTU gets host_mtu=MTU, which the guest's driver takes as
// the NIC's MTU, unless the device gives host_mtu itself. Other NIC
// models, and NICs made by -nic or -net nic, have no such property: each
// gets one line in warnings saying that the guest must be told.
func HostMTU(args []string, mtus map[string]int) (out []string, warnings []string) {
	out = append([]string(nil), args...)
	told := map[string]bool{}
	for i := 0; i+1 < len(out); i++ {
		name := optName(out[i])
		if name == "" || noArg[name] {
			continue
		}
		i++
		switch name {
		case "device":
			v := out[i]
			if strings.HasPrefix(v, "{") {
				continue
			}
			o := parseOpts(v, "driver")
			id, _ := o.get("netdev")
			mtu, ok := mtus[id]
			if !ok || mtu == StandardMTU || mtu == 0 {
				continue
			}
			told[id] = true
			driver, _ := o.get("driver")
			if !strings.HasPrefix(driver, "virtio-net") {
				warnings = append(warnings, fmt.Sprintf("netdev %s: tap MTU %d, but NIC model %s cannot be told it: set the guest's MTU to %d (DHCP's MTU option, or in the guest)", id, mtu, driver, mtu))
				continue
			}
			if _, has := o.get("host_mtu"); !has {
				out[i] = v + ",host_mtu=" + strconv.Itoa(mtu)
			}
		}
	}
	// A tap netdev without a -device on it: a -nic or -net nic.
	ids := make([]string, 0, len(mtus))
	for id := range mtus {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if mtu := mtus[id]; !told[id] && mtu != StandardMTU && mtu != 0 {
			warnings = append(warnings, fmt.Sprintf("netdev %s: tap MTU %d, but only a -device virtio-net-pci,netdev=%s can be told it (host_mtu): set the guest's MTU to %d (DHCP's MTU option, or in the guest)", id, mtu, id, mtu))
		}
	}
	return out, warnings
}
