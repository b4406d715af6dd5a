package bridgehelper

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/proc"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		want Options
		err  string
	}{
		{[]string{"--use-vnet", "--fd=5", "--br=virbr0"}, Options{UseVnet: true, FD: 5, Bridge: "virbr0"}, ""},
		{[]string{"--br=br0", "--fd=0"}, Options{FD: 0, Bridge: "br0"}, ""},
		{[]string{"--help"}, Options{FD: -1, Help: true}, ""},
		{[]string{"--fd=5"}, Options{}, "missing --br=BRIDGE"},
		{[]string{"--br=virbr0"}, Options{}, "missing --fd=FD"},
		{[]string{"--br=virbr0", "--fd=x"}, Options{}, "--fd=x: not a file descriptor number"},
		{[]string{"--br=virbr0", "--fd=-3"}, Options{}, "--fd=-3: not a file descriptor number"},
		{[]string{"--br=virbr0", "--fd=3", "--fd=4"}, Options{}, "--fd given twice"},
		{[]string{"--br", "virbr0", "--fd=3"}, Options{}, `unknown argument "--br"`},
		{[]string{"--br=" + strings.Repeat("b", 16), "--fd=3"}, Options{}, `--br: invalid interface name "bbbbbbbbbbbbbbbb": 16 bytes, longer than 15`},
		{[]string{"--br=", "--fd=3"}, Options{}, `--br: invalid interface name "": empty`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.args)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Parse(%q) error = %v, want %s", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.args, diff)
		}
	}
}

// TestMainUsage: a bad command line is exit status 1 (all QEMU tells
// apart from 0) with one line on stderr.
func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"--br=virbr0"}, {"--fd=3", "--br=" + strings.Repeat("x", 16)}} {
		var out, errb bytes.Buffer
		code := Main(args, &System{Process: proc.Process{Stdout: &out, Stderr: &errb}})
		if code != 1 || out.Len() != 0 || strings.Count(errb.String(), "\n") != 1 ||
			!strings.HasPrefix(errb.String(), Name+": ") || !strings.Contains(errb.String(), usage) {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

// TestRun runs the helper in-process in a namespace, as QEMU would run it,
// for each ACL case: allowed ends with a tap on the bridge whose descriptor
// arrives over the socket; every refusal says why and leaves no tap.
func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		acl    map[string]string // files in the ACL directory; bridge.conf is the top one
		bridge string
		want   string // "" success, else the error
	}{
		{name: "allowed", acl: map[string]string{"bridge.conf": "allow virbr0\n"}, bridge: "virbr0"},
		{name: "allowed through an include", acl: map[string]string{"bridge.conf": "include lab.conf\n", "lab.conf": "allow all\n"}, bridge: "virbr0"},
		{name: "denied", acl: map[string]string{"bridge.conf": "allow br1\n"}, bridge: "virbr0",
			want: `bridge virbr0 not allowed by DIR/bridge.conf (add the line "allow virbr0" to allow it)`},
		{name: "deny all after allow", acl: map[string]string{"bridge.conf": "allow virbr0\ndeny all\n"}, bridge: "virbr0",
			want: "bridge virbr0 denied by DIR/bridge.conf:2 (deny all); deny wins over allow, remove that line to allow it"},
		{name: "missing ACL file", acl: map[string]string{}, bridge: "virbr0",
			want: `bridge virbr0 not allowed: no ACL file DIR/bridge.conf (create it with the line "allow virbr0")`},
		{name: "broken include", acl: map[string]string{"bridge.conf": "allow all\ninclude lab.conf\n"}, bridge: "virbr0",
			want: "ACL: DIR/bridge.conf:2: include: open DIR/lab.conf: no such file or directory"},
		{name: "bridge that does not exist", acl: map[string]string{"bridge.conf": "allow all\n"}, bridge: "br9",
			want: "bridge br9 not found (Linux bridges here: virbr0)"},
		{name: "not a bridge", acl: map[string]string{"bridge.conf": "allow all\n"}, bridge: "veth0",
			want: "veth0 is not a bridge (veth)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := nstest.New(t)
			ns.AddBridge(t, "virbr0", 9000)
			if err := ns.Handle.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for name, content := range tt.acl {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(sp[0])
			defer unix.Close(sp[1])
			type entry struct {
				Msg    string
				Pri    int
				Fields map[string]string
			}
			var logged []entry
			sys := &System{
				Process: proc.Process{
					Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
					Journal: func(msg string, pri int, f map[string]string) error {
						logged = append(logged, entry{msg, pri, f})
						return nil
					},
				},
				ACLPath: filepath.Join(dir, "bridge.conf"),
				UID:     1234,
			}
			// Settings from a config the test controls, not the machine's.
			sys.Env = func(k string) string {
				switch k {
				case "QEMU_IFUP_CONFIG":
					return filepath.Join(dir, "qemu-ifup.conf")
				case "QEMU_TAP_HELPERS_RUNDIR":
					return filepath.Join(dir, "run")
				}
				return ""
			}
			err = ns.Do(func() error {
				return Run(Options{UseVnet: true, FD: sp[1], Bridge: tt.bridge}, sys)
			})
			if tt.want != "" {
				got := ""
				if err != nil {
					got = strings.ReplaceAll(err.Error(), dir, "DIR")
				}
				if got != tt.want {
					t.Errorf("Run error = %q, want %q", got, tt.want)
				}
				if left := ns.Taps(t); len(left) != 0 {
					t.Errorf("taps left behind: %q", left)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			fd, payload := nstest.RecvFD(t, sp[0])
			if !bytes.Equal(payload, []byte{0}) {
				t.Errorf("payload %q, want one zero byte", payload)
			}
			ifr, err := unix.NewIfreq("")
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
				t.Fatalf("TUNGETIFF on the received fd: %v", err)
			}
			name := ifr.Name()
			flags := ifr.Uint16()
			wantLog := []entry{{"qemu-bridge-helper: " + name + ": port of virbr0, sent to the caller (uid 1234)", 6,
				map[string]string{"SYSLOG_IDENTIFIER": "qemu-bridge-helper", "QEMU_TAP": name, "QEMU_BRIDGE": "virbr0", "QEMU_CALLER_UID": "1234"}}}
			if diff := cmp.Diff(wantLog, logged); diff != "" {
				t.Errorf("journal (-want +got):\n%s", diff)
			}
			if flags&unix.IFF_TAP == 0 || flags&unix.IFF_NO_PI == 0 || flags&unix.IFF_VNET_HDR == 0 {
				t.Errorf("received fd's flags %#x, want IFF_TAP|IFF_NO_PI|IFF_VNET_HDR", flags)
			}
			l := ns.Link(t, name)
			a := l.Attrs()
			if m := ns.MasterName(t, l); m != "virbr0" || a.MTU != 9000 || a.HardwareAddr[0] != 0xfe ||
				a.RawFlags&unix.IFF_UP == 0 || a.RawFlags&unix.IFF_PROMISC == 0 {
				t.Errorf("%s: master %q mtu %d mac %s flags %#x; want on virbr0, mtu 9000, mac fe:..., up, promisc",
					name, m, a.MTU, a.HardwareAddr, a.RawFlags)
			}
			// The caller's, and marked as the helper's.
			if own, err := ns.Conn.ByName(name); err != nil || own.Tun.Owner != 1234 || own.Alias != Marker {
				t.Errorf("%s: %+v, alias %q, %v; want owner 1234, alias %q", name, own.Tun, own.Alias, err, Marker)
			}
			// The tap lives as long as QEMU's descriptor: closing it
			// removes the tap and its port.
			unix.Close(fd)
			if left := ns.Taps(t); len(left) != 0 {
				t.Errorf("taps left after the descriptor closed: %q", left)
			}
		})
	}
}

// TestRunBadFD: a descriptor that is not a unix socket is refused before
// anything else happens.
func TestRunBadFD(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	tests := []struct {
		fd   int
		want string
	}{
		{999, "--fd=999: not an open file descriptor (QEMU passes one end of a unix socketpair)"},
		{int(f.Fd()), "not a socket (QEMU passes one end of a unix socketpair)"},
		{udp, "not a unix socket (QEMU passes one end of a unix socketpair)"},
	}
	for _, tt := range tests {
		// No ACL file: the socket check must come first to be reached.
		err := Run(Options{FD: tt.fd, Bridge: "virbr0"}, &System{ACLPath: "/nonexistent/bridge.conf"})
		if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("Run with --fd=%d: %v, want %s", tt.fd, err, tt.want)
		}
	}
}

// TestOrphan: only a tap of the helper's that persists with nobody
// holding it is swept.
func TestOrphan(t *testing.T) {
	tests := []struct {
		name string
		l    link.Link
		want bool
	}{
		{"persistent, held by nobody", link.Link{Alias: Marker, Tun: &link.Tun{Tap: true, Persist: true}}, true},
		{"persistent, held", link.Link{Alias: Marker, Tun: &link.Tun{Tap: true, Persist: true, Carrier: true}}, false},
		{"multiqueue, a queue disabled", link.Link{Alias: Marker, Tun: &link.Tun{Tap: true, Persist: true, MultiQueue: true, DisabledQueues: 1}}, false},
		{"multiqueue, no queue", link.Link{Alias: Marker, Tun: &link.Tun{Tap: true, Persist: true, MultiQueue: true}}, true},
		{"not persistent", link.Link{Alias: Marker, Tun: &link.Tun{Tap: true}}, false},
		{"not the helper's", link.Link{Alias: "vm1", Tun: &link.Tun{Tap: true, Persist: true}}, false},
		{"not a tun", link.Link{Alias: Marker}, false},
	}
	for _, tt := range tests {
		if got := orphan(&tt.l); got != tt.want {
			t.Errorf("%s: orphan = %v, want %v", tt.name, got, tt.want)
		}
	}
}
