package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// transferKiB is what each guest that measures sends and receives.
const transferKiB = 1000

// guardVM writes a VM file for a guest of g on virbr0 doing c, with nic
// as the extra [NIC] keys, and starts it through qemu-launch.
func guardVM(t *testing.T, ns *nstest.NS, env []string, g guest.Files, name string, c guest.Config, nic string) *vm {
	t.Helper()
	conf := filepath.Join(nstest.TrustedDir(t), name+".conf")
	file := fmt.Sprintf("[VM]\nName=%s\nAccel=tcg\nMemory=256M\nKernel=%s\nInitrd=%s\nAppend=%s\nGraphics=no\nNoReboot=yes\n\n"+
		"[NIC]\nID=n0\nModel=e1000\nBridge=virbr0\n%s", name, g.Kernel, g.Initrd, c.Append(), nic)
	if err := os.WriteFile(conf, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	return startVM(t, ns, env, launcher(t), "--config", conf)
}

// serveTransfers listens in ns on hostAddr at port (from the guest) and
// port+1 (to the guest): it reads one connection to its end, then writes
// transferKiB KiB to the next and closes it. It returns at once; errc
// gets the outcome.
func serveTransfers(t *testing.T, ns *nstest.NS, port int) <-chan error {
	t.Helper()
	var from, to net.Listener
	err := ns.Do(func() (err error) {
		if from, err = net.Listen("tcp4", hostAddr+":"+strconv.Itoa(port)); err != nil {
			return err
		}
		to, err = net.Listen("tcp4", hostAddr+":"+strconv.Itoa(port+1))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { from.Close(); to.Close() })
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			c, err := from.Accept()
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, c)
			c.Close()
			if err != nil || n != transferKiB<<10 {
				return fmt.Errorf("from the guest: %d bytes, %v", n, err)
			}
			c, err = to.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(make([]byte, transferKiB<<10))
			return err
		}()
	}()
	return errc
}

// transferTimes waits for v's reports of its two transfers and returns
// their durations: from the guest, then to it.
func transferTimes(t *testing.T, v *vm, name string) (time.Duration, time.Duration) {
	t.Helper()
	var out []time.Duration
	for _, prefix := range []string{"sent ", "received "} {
		r, err := v.console.Wait(prefix, 2*bootTimeout)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f := strings.Fields(r)
		d, err := time.ParseDuration(f[len(f)-1])
		if err != nil {
			t.Fatalf("%s: %q: %v", name, r, err)
		}
		if prefix == "received " && f[1] != strconv.Itoa(transferKiB<<10) {
			t.Errorf("%s: %s, want %d bytes", name, r, transferKiB<<10)
		}
		out = append(out, d)
	}
	return out[0], out[1]
}

// TestLaunchGuardAndLimits runs four guests through qemu-launch on one
// bridge, from VM files. An honest guest with Spoofing=deny reaches the
// host and a peer; a guest using an address its file does not allow,
// and one that changes its own MAC, reach nothing. The peer, limited to
// 1M each way, takes several times longer than the honest, unlimited
// guest to send and receive 1000 KiB, no less than the rate allows and
// not many times more. Once the guests stop, no port chain, jump, tbf
// qdisc or ifb device is left.
func TestLaunchGuardAndLimits(t *testing.T) {
	ns, g := setup(t)
	addBridge(t, ns, "virbr0", hostAddr+"/24", 0)
	env := helperEnv(t.TempDir())
	const (
		honest  = "192.168.122.11"
		limited = "192.168.122.12"
		rate    = 1_000_000
	)
	slow := 30 * time.Second // a wait that fails: pings with no reply
	honestVM := guardVM(t, ns, env, g, "honest", guest.Config{
		Addrs: []string{honest + "/24"}, Ping: []string{hostAddr, limited}, Answer: pings, Timeout: 3 * time.Minute,
		Send: hostAddr + ":5001:" + strconv.Itoa(transferKiB), Recv: hostAddr + ":5002",
	}, "Spoofing=deny\nIPAddress="+honest+"\n")
	limitedVM := guardVM(t, ns, env, g, "limited", guest.Config{
		// The honest guest's pings, then the host's one.
		Addrs: []string{limited + "/24"}, Ping: []string{hostAddr}, Answer: pings + 1, Timeout: 5 * time.Minute,
		Send: hostAddr + ":5003:" + strconv.Itoa(transferKiB), Recv: hostAddr + ":5004",
	}, "InboundRate=1M\nOutboundRate=1M\n")
	spoofVM := guardVM(t, ns, env, g, "spoof", guest.Config{
		Addrs: []string{"192.168.122.23/24"}, Ping: []string{hostAddr, honest}, Count: 2, Timeout: slow,
	}, "Spoofing=deny\nIPAddress=192.168.122.13\n")
	macVM := guardVM(t, ns, env, g, "newmac", guest.Config{
		Addrs: []string{"192.168.122.14/24"}, Ping: []string{hostAddr, honest}, Count: 2, Timeout: slow,
		MAC: "02:00:00:00:00:14",
	}, "Spoofing=deny\nIPAddress=192.168.122.14\n")

	// The honest guest transfers first, alone; then the limited one.
	honestDone := serveTransfers(t, ns, 5001)
	for _, v := range []*vm{honestVM, limitedVM, spoofVM, macVM} {
		v.ready(t)
	}
	// Four ports with chains: three against spoofing, one that names
	// its ifb device.
	if chains := guardChains(t, ns); len(chains) != 5 || len(chains[guardBase]) != 4 {
		t.Errorf("guard chains while running: %v, want the base chain with four jumps, and four port chains", chains)
	}
	if got := tbfs(t, ns); len(got) != 2 {
		t.Errorf("tbf qdiscs while running: %v, want the limited guest's tap and ifb device", got)
	}
	for _, name := range []string{"spoof", "newmac"} {
		v := map[string]*vm{"spoof": spoofVM, "newmac": macVM}[name]
		for _, a := range []string{hostAddr, honest} {
			r, err := v.console.Wait("ping "+a+" ", 2*bootTimeout)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !strings.HasPrefix(r, "ping "+a+" fail 0/") {
				t.Errorf("%s: %s, want no reply", name, r)
			}
		}
	}
	fromFast, toFast := transferTimes(t, honestVM, "honest")
	if err := <-honestDone; err != nil {
		t.Fatalf("honest transfers: %v", err)
	}
	limitedDone := serveTransfers(t, ns, 5003)
	fromSlow, toSlow := transferTimes(t, limitedVM, "limited")
	if err := <-limitedDone; err != nil {
		t.Fatalf("limited transfers: %v", err)
	}
	predicted := time.Duration(float64(transferKiB<<10*8) / rate * float64(time.Second))
	t.Logf("1000 KiB from the guest: unlimited %v, limited to 1M %v (%.1fx); to the guest: unlimited %v, limited %v (%.1fx); the rate predicts %v",
		fromFast, fromSlow, fromSlow.Seconds()/fromFast.Seconds(), toFast, toSlow, toSlow.Seconds()/toFast.Seconds(), predicted)
	for _, d := range []struct {
		way        string
		fast, slow time.Duration
	}{{"from the guest", fromFast, fromSlow}, {"to the guest", toFast, toSlow}} {
		if d.slow < 3*d.fast {
			t.Errorf("%s: limited %v, unlimited %v: want at least 3 times longer", d.way, d.slow, d.fast)
		}
		// The burst and rounding let a little more through than the rate;
		// a loaded machine may stretch a transfer, not by this much.
		if d.slow < predicted*3/4 || d.slow > predicted*3 {
			t.Errorf("%s: limited %v, far from what 1M predicts (%v)", d.way, d.slow, predicted)
		}
	}
	hostPing(t, ns, honest, pings)
	hostPing(t, ns, limited, 1)

	honestVM.passed(t)
	limitedVM.passed(t)
	for _, v := range []*vm{spoofVM, macVM} {
		if err := v.wait(t); err != nil {
			t.Errorf("%s: %v, want exit status 0", v.cmd.Path, err)
		}
	}
	noTapsLeft(t, ns)
	if got := guardChains(t, ns); len(got) > 1 || len(got[guardBase]) != 0 {
		t.Errorf("nftables chains after the guests stopped: %v, want none but an empty base chain", got)
	}
	if got := tbfs(t, ns); len(got) != 0 {
		t.Errorf("tbf qdiscs after the guests stopped: %v", got)
	}
	links, err := ns.Handle.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, bridge.IfbPrefix) {
			t.Errorf("ifb device %s left after the guests stopped", l.Attrs().Name)
		}
	}
}

// guardBase is the base chain of the guard table.
const guardBase = "ports"

// guardChains lists, through nftables in ns, the chains of the guard
// table with their rules' verdicts, as nft would name them.
func guardChains(t *testing.T, ns *nstest.NS) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, rules := range nstest.NftChains(t, ns, bridge.GuardTable) {
		out[name] = []string{}
		for _, r := range rules {
			out[name] = append(out[name], strconv.Itoa(len(r.Exprs))+" exprs")
		}
	}
	return out
}

// tbfs lists the interfaces of ns whose root qdisc is a tbf.
func tbfs(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	links, err := ns.Handle.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		qs, err := ns.Handle.QdiscList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if _, ok := q.(*netlink.Tbf); ok && q.Attrs().Parent == netlink.HANDLE_ROOT && q.Attrs().LinkIndex == l.Attrs().Index {
				out = append(out, l.Attrs().Name)
			}
		}
	}
	return out
}
