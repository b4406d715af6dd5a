package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestBridgeHelperUnprivileged runs qemu-bridge-helper as QEMU runs it for
// a user with no privileges: the helper holds the file capability
// cap_net_admin and the fd is one end of a socketpair. Each case checks the
// exit status, the one line on stderr, and that no tap is left behind
// unless the fd came back.
func TestBridgeHelperUnprivileged(t *testing.T) {
	nstest.RequireRoot(t)
	dir := nstest.PublicDir(t)
	acl := filepath.Join(dir, "bridge.conf")
	helper := nstest.BuildWithACL(t, dir, acl, "qemu-bridge-helper")
	nstest.SetCap(t, helper, "cap_net_admin+ep")
	nstest.OpenTun(t)
	// A config the environment points at: ignored under AT_SECURE, so
	// its MTU must not show on the tap.
	ifupConf := filepath.Join(dir, "qemu-ifup.conf")
	if err := os.WriteFile(ifupConf, []byte("[Defaults]\nMTU=1280\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		acl   string // "" no file
		args  []string
		setup func(t *testing.T)
		want  string // stderr after "qemu-bridge-helper: "; "" success
	}{
		{name: "allowed", acl: "allow virbr0\n", args: []string{"--use-vnet", "--fd=3", "--br=virbr0"}},
		{name: "denied", acl: "allow br1\n", args: []string{"--use-vnet", "--fd=3", "--br=virbr0"},
			want: `bridge virbr0 not allowed by ` + acl + ` (add the line "allow virbr0" to allow it)`},
		{name: "deny all after allow", acl: "allow virbr0\ndeny all\n", args: []string{"--fd=3", "--br=virbr0"},
			want: "bridge virbr0 denied by " + acl + ":2 (deny all); deny wins over allow, remove that line to allow it"},
		{name: "allowed through an include", acl: "include lab.conf\n", args: []string{"--fd=3", "--br=virbr0"},
			setup: func(t *testing.T) { writeACL(t, filepath.Join(dir, "lab.conf"), "allow virbr0\n") }},
		{name: "denied in an include", acl: "allow all\ninclude lab.conf\n", args: []string{"--fd=3", "--br=virbr0"},
			setup: func(t *testing.T) { writeACL(t, filepath.Join(dir, "lab.conf"), "deny virbr0\n") },
			want:  "bridge virbr0 denied by " + filepath.Join(dir, "lab.conf") + ":1 (deny virbr0); deny wins over allow, remove that line to allow it"},
		{name: "missing include", acl: "allow all\ninclude gone.conf\n", args: []string{"--fd=3", "--br=virbr0"},
			want: "ACL: " + acl + ":2: include: open " + filepath.Join(dir, "gone.conf") + ": no such file or directory"},
		{name: "missing ACL", args: []string{"--fd=3", "--br=virbr0"},
			want: `bridge virbr0 not allowed: no ACL file ` + acl + ` (create it with the line "allow virbr0")`},
		{name: "16-byte bridge name", acl: "allow all\n", args: []string{"--fd=3", "--br=virbr0virbr0virb"},
			want: `--br: invalid interface name "virbr0virbr0virb": 16 bytes, longer than 15 (usage: qemu-bridge-helper [--use-vnet] --br=BRIDGE --fd=FD)`},
		{name: "bridge that does not exist", acl: "allow all\n", args: []string{"--fd=3", "--br=br9"},
			want: "bridge br9 not found (Linux bridges here: virbr0)"},
		{name: "bad --fd", acl: "allow all\n", args: []string{"--fd=9", "--br=virbr0"},
			want: "--fd=9: not an open file descriptor (QEMU passes one end of a unix socketpair)"},
		{name: "no socket", acl: "allow all\n", args: []string{"--fd=0", "--br=virbr0"},
			want: "--fd=0: not a socket (QEMU passes one end of a unix socketpair)"},
		{name: "ACL file not root's", acl: "allow all\n", args: []string{"--fd=3", "--br=virbr0"},
			setup: func(t *testing.T) {
				if err := os.Chown(acl, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			},
			want: "ACL: " + acl + ": not trusted: owned by uid 65534 (nobody) with mode 0644; root trusts a file only if root owns it " +
				"and every directory on its path and no one else may write them (fix: chown root:root " + acl + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := nstest.New(t)
			ns.AddBridge(t, "virbr0", 9000)
			os.Remove(acl)
			if tt.acl != "" {
				if err := os.WriteFile(acl, []byte(tt.acl), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(t)
			}
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours := os.NewFile(uintptr(sp[0]), "ours")
			theirs := os.NewFile(uintptr(sp[1]), "theirs")
			defer ours.Close()
			cmd := exec.Command(helper, tt.args...)
			cmd.Env = []string{"QEMU_IFUP_CONFIG=" + ifupConf}
			cmd.ExtraFiles = []*os.File{theirs} // fd 3
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nstest.Nobody(t)}
			code, err := nstest.ExitStatus(ns.Run(cmd))
			theirs.Close()
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" {
				if code != 1 || errb.String() != "qemu-bridge-helper: "+tt.want+"\n" || out.Len() != 0 {
					t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out.String(), errb.String(), tt.want)
				}
				if left := ns.Taps(t); len(left) != 0 {
					t.Errorf("taps left behind: %q", left)
				}
				return
			}
			if code != 0 || errb.Len() != 0 {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errb.String())
			}
			fd, payload := nstest.RecvFD(t, int(ours.Fd()))
			if len(payload) != 1 {
				t.Fatalf("payload %q, want one byte", payload)
			}
			tapFile := os.NewFile(uintptr(fd), "tap")
			ifr, _ := unix.NewIfreq("")
			if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
				t.Fatalf("TUNGETIFF: %v", err)
			}
			p := (&env{t: t, ns: ns}).port(ifr.Name())
			// The bridge's MTU, not the 1280 of the config the
			// environment named: AT_SECURE, the environment is the
			// caller's and ignored.
			if p.Master != "virbr0" || p.MTU != 9000 || !strings.HasPrefix(p.MAC, "fe:") || !p.Promisc || !p.Up {
				t.Errorf("%s = %+v, want a port of virbr0, mtu 9000, mac fe:..., promisc, up", ifr.Name(), p)
			}
			tapFile.Close()
			if left := ns.Taps(t); len(left) != 0 {
				t.Errorf("taps left after the fd closed: %q", left)
			}
		})
	}
}

func writeACL(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
}
