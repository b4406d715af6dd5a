package bridge

import (
	"slices"
	"strconv"
	"strings"
)

// sameOVS reports whether the port have is configured as want asks (keys
// of external-ids that want does not give are someone else's).
func sameOVS(have *OVSPort, want OVSPort) bool {
	if have == nil {
		return false
	}
	if have.Tag != want.Tag || !slices.Equal(have.Trunks, want.Trunks) || have.VLANMode != want.VLANMode || have.MTU != want.MTU {
		return false
	}
	for k, v := range want.ExternalIDs {
		if hv, ok := have.ExternalIDs[k]; !ok || hv != v {
			return false
		}
	}
	for _, k := range want.RemoveExternalIDs {
		if _, ok := have.ExternalIDs[k]; ok {
			return false
		}
	}
	return true
}

// describeOVS shows the settings in which have and want differ, as
// ovs-vsctl would write them.
func describeOVS(have *OVSPort, want OVSPort) (string, string) {
	var h, w []string
	field := func(name, hv, wv string) {
		if hv != wv {
			h, w = append(h, name+"="+hv), append(w, name+"="+wv)
		}
	}
	var hp OVSPort
	if have != nil {
		hp = *have
	}
	field("tag", intOrNone(hp.Tag), intOrNone(want.Tag))
	field("trunks", listOrNone(hp.Trunks), listOrNone(want.Trunks))
	field("vlan_mode", orNone(string(hp.VLANMode)), orNone(string(want.VLANMode)))
	field("mtu_request", intOrNone(hp.MTU), intOrNone(want.MTU))
	keys := make([]string, 0, len(want.ExternalIDs))
	for k := range want.ExternalIDs {
		keys = append(keys, k)
	}
	keys = append(keys, want.RemoveExternalIDs...)
	slices.Sort(keys)
	for _, k := range keys {
		hv, ok := hp.ExternalIDs[k]
		if !ok {
			hv = "none"
		}
		wv, ok := want.ExternalIDs[k]
		if !ok {
			wv = "none"
		}
		field("external-ids:"+k, hv, wv)
	}
	return strings.Join(h, " "), strings.Join(w, " ")
}

func intOrNone(n int) string {
	if n == 0 {
		return "none"
	}
	return strconv.Itoa(n)
}

func listOrNone(vs []int) string {
	if len(vs) == 0 {
		return "none"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
