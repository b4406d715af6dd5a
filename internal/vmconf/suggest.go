package vmconf

import "strings"

// sectionNames and keyNames are the sections and keys a VM file may
// hold, for "did you mean" in errors; TestKeyNames holds them to what
// the parser accepts.
var (
	sectionNames = []string{"[VM]", "[Drive]", "[NIC]", "[VCPU]", "[IOThread]", "[QEMU]"}
	keyNames     = map[string][]string{
		"VM": {"QEMU=", "Name=", "Process=", "Machine=", "Accel=", "CPU=", "Memory=", "VCPUs=", "HostCPUs=",
			"EmulatorCPUs=", "User=", "MemoryLock=", "Kernel=", "Initrd=", "Append=", "NoReboot=", "Graphics=",
			"Paused=", "ShutdownTimeout="},
		"Drive":    {"File=", "Interface=", "Format=", "Options="},
		"NIC":      {"ID=", "Model=", "MACAddress=", "Ifname=", "Script=", "DownScript=", "Bridge=", "MTU=", "VLAN=", "Trunks=", "Isolated=", "Learning=", "UnicastFlood=", "HostMAC="},
		"VCPU":     {"Index=", "Affinity=", "Priority="},
		"IOThread": {"ID=", "CPUs="},
		"QEMU":     {"Arguments="},
	}
)

// didYouMean returns `; did you mean X?` for the known name closest to
// name, when one is close enough to be a slip (a case difference, or at
// most a third of its letters wrong); "" otherwise.
func didYouMean(name string, known []string) string {
	best, bestDist := "", 0
	for _, k := range known {
		d := distance(strings.ToLower(name), strings.ToLower(k))
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" || bestDist > max(1, len(name)/3) {
		return ""
	}
	return "; did you mean " + best + "?"
}

// distance is the edit distance between a and b, in bytes, counting a
// swap of two neighbours as one edit (optimal string alignment): the
// slips of typing.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
