package vmconf

import (
	"strings"
	"testing"
)

// Every key listed for "did you mean" is one the parser knows.
func TestKeyNames(t *testing.T) {
	for sec, keys := range keyNames {
		for _, k := range keys {
			_, err := Parse("vm.conf", []byte("["+sec+"]\n"+k+"x\n"))
			if err != nil && strings.Contains(err.Error(), "unknown key") {
				t.Errorf("[%s] %s is listed but unknown to the parser: %v", sec, k, err)
			}
		}
	}
}

// One run reports every error of a file, each naming its line, and a
// misspelt key or section names the one meant.
func TestAllErrors(t *testing.T) {
	in := "[VM]\nName=web\nMemroy=512M\nVCPUs=many\nhostcpus=0\n\n[NCI]\nBridge=virbr0\n\n[NIC]\nBrigde=virbr0\nColour=blue\n"
	_, err := Parse("vm.conf", []byte(in))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want := []string{
		"vm.conf:3: unknown key Memroy= in [VM]; did you mean Memory=?",
		`vm.conf:4: VCPUs: "many" is not a number from 1 to 4096`,
		"vm.conf:5: unknown key hostcpus= in [VM]; did you mean HostCPUs=?",
		"vm.conf:7: unknown section [NCI]; did you mean [NIC]? (want [VM], [Drive], [NIC], [VCPU], [IOThread] or [QEMU])",
		"vm.conf:11: unknown key Brigde= in [NIC]; did you mean Bridge=?",
		"vm.conf:12: unknown key Colour= in [NIC]",
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Parse errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"Bridge=", "; did you mean Bridge=?"},
		{"bridge=", "; did you mean Bridge=?"},
		{"MACAdress=", "; did you mean MACAddress=?"},
		{"Colour=", ""},
		{"X=", ""},
	} {
		if got := didYouMean(tc.name, keyNames["NIC"]); got != tc.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The checks across sections also report every problem at once.
func TestAllCheckErrors(t *testing.T) {
	in := "[VM]\nVCPUs=2\nHostCPUs=0\nEmulatorCPUs=1\n\n[VCPU]\nIndex=2\n\n[NIC]\nID=a\n\n[NIC]\nID=a\n"
	_, err := Parse("vm.conf", []byte(in))
	want := []string{
		"vm.conf: two [NIC] sections with ID=a",
		"vm.conf: EmulatorCPUs=1 is outside HostCPUs=0",
		"vm.conf: [VCPU] Index=2: the VM has 2 vCPU(s) (VCPUs=)",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("Parse: %v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}
