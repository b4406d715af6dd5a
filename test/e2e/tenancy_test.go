package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// TestLaunchThreeGuests runs three guests at once on one bridge, each
// through qemu-launch from the same seed-style command line without a MAC
// (only -name and the guest's address differ): each gets its own guest MAC,
// and every guest pings every other guest and the host, and the host pings
// them. Then a second launch of a running VM fails before QEMU starts,
// naming the VM and its launcher, and all three guests keep their ports
// and still answer.
func TestLaunchThreeGuests(t *testing.T) {
	ns, g := setup(t)
	launch := launcher(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
	env := helperEnv(t.TempDir()) // one run directory, as on a host

	const count = 3
	addrs := []string{"192.168.122.11", "192.168.122.12", "192.168.122.13"}
	command := func(i int) []string {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		c := guest.Config{
			Addrs: []string{addrs[i] + "/24"},
			Ping:  append([]string{hostAddr}, peers...),
			Count: count,
			// The two peers' pings and the host's two rounds.
			Answer:  count * 4,
			Timeout: 3 * time.Minute,
		}
		args := []string{launch, "--", qemuBinary, "-name", "vm" + strconv.Itoa(i)}
		args = append(args, baseArgs(g, c)...)
		return append(args, "-device", "e1000,netdev=n0", "-netdev", "tap,id=n0")
	}
	vms := make([]*vm, len(addrs))
	for i := range addrs {
		vms[i] = startVM(t, ns, env, command(i)...)
	}
	macs := map[string]int{}
	for i, v := range vms {
		v.ready(t)
		link, err := v.console.Wait("link eth0 ", bootTimeout)
		if err != nil {
			t.Fatal(err)
		}
		mac := strings.Fields(link)[2]
		if want := qemuargs.GuestMAC("vm"+strconv.Itoa(i), "n0").String(); mac != want {
			t.Errorf("vm%d: guest MAC %s, want %s", i, mac, want)
		}
		if j, dup := macs[mac]; dup {
			t.Errorf("vm%d and vm%d share guest MAC %s", j, i, mac)
		}
		macs[mac] = i
	}
	// Every guest reached the host and both peers.
	for i, v := range vms {
		for _, a := range append([]string{hostAddr}, addrs...) {
			if a == addrs[i] {
				continue
			}
			r, err := v.console.Wait("ping "+a+" ", 2*bootTimeout)
			if err != nil {
				t.Fatalf("vm%d: %v", i, err)
			}
			if !strings.HasPrefix(r, "ping "+a+" ok") {
				t.Errorf("vm%d: %s", i, r)
			}
		}
	}
	for _, a := range addrs {
		hostPing(t, ns, a, count)
	}
	portsBefore := ports(t, ns, "virbr0")
	if len(portsBefore) != 3 {
		t.Fatalf("ports of virbr0: %q, want three taps", portsBefore)
	}

	// The second launch of vm1 fails cleanly, before QEMU starts.
	second := startVM(t, ns, env, command(1)...)
	if err := second.wait(t); err == nil {
		t.Error("second launch of vm1 exited 0")
	}
	want := fmt.Sprintf("qemu-launch: VM vm1 is already running (qemu-launch pid %d); not starting it twice\n", vms[1].cmd.Process.Pid)
	if got := second.stderr.String(); got != want {
		t.Errorf("second launch: stderr %q, want %q", got, want)
	}
	if r := second.console.Reports(); len(r) != 0 {
		t.Errorf("the second vm1 booted: %q", r)
	}
	after := ports(t, ns, "virbr0")
	if strings.Join(after, ",") != strings.Join(portsBefore, ",") {
		t.Errorf("ports of virbr0 after the second launch: %q, were %q", after, portsBefore)
	}
	for _, p := range after {
		checkPort(t, ns, p, "virbr0")
	}
	for _, a := range addrs {
		hostPing(t, ns, a, count)
	}
	for _, v := range vms {
		v.passed(t)
	}
}
