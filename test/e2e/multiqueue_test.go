package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// TestLaunchMultiqueueTap runs a guest whose virtio NIC has a tap with two
// queues (and vhost where the host has /dev/vhost-net) through qemu-launch:
// the options pass through to QEMU, the tap has two queues, the up-script
// runs once for the tap (QEMU runs it for the first queue only), and the
// guest and the host ping each other.
func TestLaunchMultiqueueTap(t *testing.T) {
	ns, g := setup(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
	opts := "tap,id=vm0,queues=2"
	if _, err := os.Stat("/dev/vhost-net"); err == nil {
		opts += ",vhost=on"
	} else {
		t.Logf("no /dev/vhost-net on this host: testing queues=2 without vhost")
	}
	args := append([]string{launcher(t), "-v", "--", qemuBinary, "-name", "mq"}, baseArgs(g, guest.Config{Answer: pings})...)
	args = append(args, "-device", "virtio-net-pci,netdev=vm0,mq=on,vectors=6", "-netdev", opts)
	v := startVM(t, ns, helperEnv(t.TempDir()), args...)
	v.ready(t)

	name := onlyTap(t, ns)
	checkPort(t, ns, name, "virbr0")
	checkQueues(t, ns, name, 2)
	hostPing(t, ns, guestAddr, pings)
	v.passed(t)
	if n := strings.Count(v.stderr.String(), "qemu-ifup: "+name+": up\n"); n != 1 {
		t.Errorf("qemu-ifup set %s up %d times, want once; stderr:\n%s", name, n, v.stderr.String())
	}
	if p := ports(t, ns, "virbr0"); len(p) != 0 {
		t.Errorf("ports left on virbr0 after the guest stopped: %q", p)
	}
}
