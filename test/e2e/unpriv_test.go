package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// publicGuest copies the guest's files where the unprivileged QEMU can
// read them (the cache may sit below a directory only root enters).
func publicGuest(t *testing.T, g guest.Files, dir string) guest.Files {
	t.Helper()
	out := guest.Files{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.gz")}
	for src, dst := range map[string]string{g.Kernel: out.Kernel, g.Initrd: out.Initrd} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// procStatus returns the lines of /proc/PID/status that start with key.
func procStatus(t *testing.T, pid int, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, key)
	return ""
}

// TestUnprivilegedBridgeHelper is the unprivileged path as a user follows
// it: one ACL line, and QEMU run as a user with no privileges at all with
// -netdev bridge,helper= pointing at our helper, which holds only the file
// capability cap_net_admin. The guest must ping the host and back, and
// QEMU must have run as that user without a capability. Once directly, once
// with a helper string holding a blank, which QEMU runs through /bin/sh -c.
func TestUnprivilegedBridgeHelper(t *testing.T) {
	tests := []struct {
		name, model string
		helperArgs  string // after the helper's path in helper=
	}{
		{"direct", "virtio-net-pci", ""},
		{"through sh", "e1000", " --use-vnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, g := setup(t)
			dir := nstest.PublicDir(t)
			acl := filepath.Join(dir, "bridge.conf")
			if err := os.WriteFile(acl, []byte("allow virbr0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			helper := nstest.BuildWithACL(t, dir, acl, "qemu-bridge-helper")
			nstest.SetCap(t, helper, "cap_net_admin+ep")
			nstest.OpenTun(t)
			g = publicGuest(t, g, dir)
			addBridge(t, ns, "virbr0", hostAddr+"/24", 9000)

			args := append([]string{qemuBinary}, baseArgs(g, guest.Config{Answer: pings})...)
			args = append(args,
				"-device", tt.model+",netdev=vm0",
				"-netdev", "bridge,id=vm0,br=virbr0,helper="+helper+tt.helperArgs)
			user := nstest.Nobody(t)
			// HOME and the rest of root's environment mean nothing to
			// the user; the helper ignores the environment anyway.
			v := startVMAs(t, ns, user, []string{"HOME=/"}, args...)
			v.ready(t)

			pid := v.cmd.Process.Pid
			if uid := strings.Fields(procStatus(t, pid, "Uid")); len(uid) < 2 || uid[0] != strconv.FormatUint(uint64(user.Uid), 10) || uid[1] == "0" {
				t.Errorf("QEMU's Uid: %q, want %d (real and effective)", uid, user.Uid)
			}
			for _, set := range []string{"CapEff", "CapPrm"} {
				if c := procStatus(t, pid, set); c != "0000000000000000" {
					t.Errorf("QEMU's %s = %s, want none", set, c)
				}
			}
			tap := onlyTap(t, ns)
			checkPort(t, ns, tap, "virbr0")
			hostPing(t, ns, guestAddr, pings)
			v.passed(t)
			if !hasReport(v.console.Reports(), "ping "+hostAddr+" ok") {
				t.Errorf("guest did not ping %s: %q", hostAddr, v.console.Reports())
			}
			// The tap died with QEMU's descriptor.
			if left := taps(t, ns); len(left) != 0 {
				t.Errorf("taps left after QEMU ended: %q", left)
			}
		})
	}
}
