package qemuargs

// The wiring of tap netdevs to the helpers: tap names, the launcher's
// descriptors, and the guest MACs qemu-ifup records.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// netdev wires a tap netdev (-netdev tap, -nic tap or -net tap) to the
// helpers. JSON netdevs and non-tap ones pass unchanged.
func (r *rewriter) netdev(flag, val string) ([]string, error) {
	if strings.HasPrefix(val, "{") {
		return nil, nil
	}
	o := parseOpts(val, "type")
	if t, _ := o.get("type"); t != "tap" {
		return nil, nil
	}
	r.netdevs++
	id, ok := o.get("id")
	if !ok && flag == "net" {
		id, ok = o.get("name")
	}
	if !ok {
		id = flag + strconv.Itoa(r.netdevs-1)
	}
	r.tapIDs[id], r.lastID = true, id
	for _, k := range []string{"fd", "fds", "helper"} {
		if _, ok := o.get(k); ok {
			if _, want := r.o.Settings[id]; want {
				return nil, fmt.Errorf("netdev %s opens its tap with %s=, so qemu-ifup cannot be given its settings", id, k)
			}
			return nil, nil
		}
	}
	for _, t := range r.res.Taps {
		if t.ID == id {
			return nil, fmt.Errorf("second tap netdev with id %q", id)
		}
	}
	add := ""
	up, hasUp := o.get("script")
	if !hasUp {
		add += ",script=" + escape(r.o.IfUp)
	}
	if _, ok := o.get("downscript"); !ok {
		add += ",downscript=" + escape(r.o.IfDown)
	}
	if hasUp && (r.o.IsIfUp == nil || !r.o.IsIfUp(up)) {
		if r.o.TapFd > 0 && up != "" && up != "no" {
			return nil, fmt.Errorf("netdev %s runs its own script=%s, which would run without privileges as QEMU's user; drop it and qemu-launch runs qemu-ifup itself", id, up)
		}
		// The user's own script gets no record: it would not read it.
		if _, want := r.o.Settings[id]; want {
			return nil, fmt.Errorf("netdev %s runs its own script=, which would not read the bridge given for it", id)
		}
		return []string{"-" + flag, val + add}, nil
	}
	t := Tap{ID: id, Settings: r.o.Settings[id]}
	// The VM's name for Open vSwitch's external-ids, where the command
	// names the VM; a name the settings refuse is left out.
	if r.res.Name != DefaultName && !t.Settings.Has(ifconf.KeyVMName) {
		_ = t.Settings.Set(ifconf.KeyVMName, r.res.Name, ifconf.Origin{File: "-name"})
	}
	// The VM's UUID (vm-uuid), where the command gives one; QEMU
	// refuses a malformed one.
	if r.uuid != "" && !t.Settings.Has(ifconf.KeyVMUUID) {
		_ = t.Settings.Set(ifconf.KeyVMUUID, r.uuid, ifconf.Origin{File: "-uuid"})
	}
	if mac, ok := o.get("mac"); ok && flag == "nic" && !t.Settings.Has(ifconf.KeyGuestMAC) {
		_ = t.Settings.Set(ifconf.KeyGuestMAC, mac, ifconf.Origin{File: "-nic"})
	}
	if !t.Settings.Has(ifconf.KeyBridge) && r.o.Bridge != "" {
		if err := t.Settings.Set(ifconf.KeyBridge, r.o.Bridge, ifconf.Origin{File: "--bridge"}); err != nil {
			return nil, fmt.Errorf("--bridge: %w", err)
		}
	}
	if ifname, ok := o.get("ifname"); ok {
		if strings.Contains(ifname, "%") && utf8.ValidString(ifname) && strings.IndexFunc(ifname, unicode.IsControl) < 0 {
			return nil, fmt.Errorf("ifname=%s: the kernel picks that name, so qemu-ifup cannot be given settings for it; drop ifname= and qemu-launch names the tap", ifname)
		}
		if err := link.ValidateName(ifname); err != nil {
			return nil, err
		}
		t.Ifname = ifname
	} else {
		t.Ifname, t.Derived = TapName(r.res.Name, id), true
		add += ",ifname=" + t.Ifname
	}
	for _, u := range r.res.Taps {
		if u.Ifname == t.Ifname {
			return nil, fmt.Errorf("netdevs %s and %s would both use tap %s", u.ID, id, t.Ifname)
		}
	}
	if r.o.TapFd > 0 {
		return r.tapFd(flag, id, o, t)
	}
	r.res.Taps = append(r.res.Taps, t)
	return []string{"-" + flag, val + add}, nil
}

// tapFd rewrites a tap netdev whose tap the launcher opens: fd=N instead
// of ifname=, script= and downscript=, which QEMU refuses beside fd=.
func (r *rewriter) tapFd(flag, id string, o opts, t Tap) ([]string, error) {
	t.Queues = 1
	if q, ok := o.get("queues"); ok {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 256 {
			return nil, fmt.Errorf("netdev %s: queues=%s is not a number from 1 to 256", id, q)
		}
		t.Queues = n
	}
	t.VnetHdr = true
	if v, ok := o.get("vnet_hdr"); ok && v == "off" {
		t.VnetHdr = false
	}
	t.FD = r.o.TapFd
	for _, u := range r.res.Taps {
		t.FD += u.Queues
	}
	var b strings.Builder
	for i, e := range o {
		switch e.key {
		case "ifname", "script", "downscript", "vnet_hdr", "queues":
			continue
		case "type":
			if i == 0 {
				b.WriteString(escape(e.val))
				continue
			}
		}
		b.WriteString("," + e.key + "=" + escape(e.val))
	}
	if t.Queues == 1 {
		b.WriteString(",fd=" + strconv.Itoa(t.FD))
	} else {
		// QEMU takes a multiqueue tap's descriptors as fds=a:b:...
		fds := make([]string, t.Queues)
		for i := range fds {
			fds[i] = strconv.Itoa(t.FD + i)
		}
		b.WriteString(",fds=" + strings.Join(fds, ":"))
	}
	r.res.Taps = append(r.res.Taps, t)
	return []string{"-" + flag, b.String()}, nil
}

// TapName derives a tap name from the VM's name and the netdev id:
// "NAME-ID" when that is a valid name of at most 15 bytes, else a prefix
// of it and a hash of both, so that the name stays the same from run to
// run and differs between netdevs.
func TapName(vm, id string) string {
	n := vm + "-" + id
	if link.ValidateName(n) == nil && !strings.Contains(n, "%") {
		return n
	}
	sum := sha256.Sum256([]byte(vm + "\x00" + id))
	suffix := hex.EncodeToString(sum[:3])
	var b strings.Builder
	for _, c := range []byte(n) {
		if b.Len() == link.MaxNameLen-1-len(suffix) {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String() + "-" + suffix
	if name[0] == '-' {
		// A leading '-' would read as an option to the up-script.
		name = "_" + name[1:]
	}
	return name
}

// deviceMACs gives every -device on a tap netdev that names no guest MAC
// one derived from the VM's name and the netdev id: without it, QEMU gives
// every VM 52:54:00:12:34:56, and two VMs on one bridge collide.
func (r *rewriter) deviceMACs(args []string) []string {
	for i := 0; i+1 < len(args); i++ {
		if optName(args[i]) != "device" {
			continue
		}
		i++
		v := args[i]
		if strings.HasPrefix(v, "{") {
			continue
		}
		o := parseOpts(v, "driver")
		id, ok := o.get("netdev")
		if !ok || !r.tapIDs[id] {
			continue
		}
		mac, has := o.get("mac")
		if !has {
			mac = GuestMAC(r.res.Name, id).String()
			args[i] = v + ",mac=" + mac
		}
		r.guestMAC(id, mac)
	}
	return args
}

// guestMAC gives the tap of netdev id the guest's MAC for qemu-ifup (the
// static FDB entry of a port without learning, OVS's attached-mac). A MAC
// the settings refuse is QEMU's to complain about.
func (r *rewriter) guestMAC(id, mac string) {
	for i := range r.res.Taps {
		t := &r.res.Taps[i]
		if t.ID == id && !t.Settings.Has(ifconf.KeyGuestMAC) {
			_ = t.Settings.Set(ifconf.KeyGuestMAC, mac, ifconf.Origin{File: "-device"})
		}
	}
}

// GuestMAC is the guest MAC qemu-launch gives the NIC of netdev id in VM
// vm when none is given: locally administered, unicast, the rest from a
// hash of both names, so stable from run to run and distinct (46 bits)
// between VM/NIC pairs.
func GuestMAC(vm, id string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("qemu-launch guest MAC\x00" + vm + "\x00" + id))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}
