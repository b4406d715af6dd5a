package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// noOwner is what TUNSETOWNER/TUNSETGROUP take for "none".
const noOwner = ^uint32(0)

// TestCapabilityHelpers runs copies of qemu-ifup and qemu-ifdown holding
// the file capability cap_net_admin, as the user nobody: they must act on
// nobody's own taps (owner or group, as the kernel reports them) on a
// bridge the bridge ACL allows, and refuse anything else, changing nothing.
func TestCapabilityHelpers(t *testing.T) {
	nstest.RequireRoot(t)
	dir := nstest.PublicDir(t)
	acl := filepath.Join(dir, "bridge.conf")
	ifup := nstest.BuildWithACL(t, dir, acl, "qemu-ifup")
	ifdown := nstest.BuildWithACL(t, dir, acl, "qemu-ifdown")
	nstest.SetCap(t, ifup, "cap_net_admin+ep")
	nstest.SetCap(t, ifdown, "cap_net_admin+ep")
	user := nstest.Nobody(t)
	mine, other := user.Uid, uint32(4242)

	tests := []struct {
		name         string
		acl          string
		prog         string
		owner, group uint32
		attached     bool   // the tap starts as a port of virbr0
		want         string // stderr of a refusal, "" success
	}{
		{name: "ifup own tap", acl: "allow virbr0\n", prog: ifup, owner: mine, group: noOwner},
		{name: "ifup tap of the caller's group", acl: "allow virbr0\n", prog: ifup, owner: noOwner, group: user.Gid},
		{name: "ifdown own tap", acl: "allow virbr0\n", prog: ifdown, owner: mine, group: noOwner, attached: true},
		{name: "ifup another user's tap", acl: "allow virbr0\n", prog: ifup, owner: other, group: noOwner,
			want: "qemu-ifup: tap0: not the caller's tap (owner uid 4242; caller uid 65534): run with a capability, qemu-ifup and qemu-ifdown touch only taps whose owner or group is the caller's\n"},
		{name: "ifup a tap of no one", acl: "allow virbr0\n", prog: ifup, owner: noOwner, group: noOwner,
			want: "qemu-ifup: tap0: not the caller's tap (no owner or group; caller uid 65534): run with a capability, qemu-ifup and qemu-ifdown touch only taps whose owner or group is the caller's\n"},
		{name: "ifup own tap on a denied bridge", acl: "allow br1\n", prog: ifup, owner: mine, group: noOwner,
			want: "qemu-ifup: tap0: bridge virbr0 not allowed by " + acl + " (add the line \"allow virbr0\" to allow it)\n"},
		{name: "ifdown another user's tap", acl: "allow virbr0\n", prog: ifdown, owner: other, group: noOwner, attached: true,
			want: "qemu-ifdown: tap0: not the caller's tap (owner uid 4242; caller uid 65534): run with a capability, qemu-ifup and qemu-ifdown touch only taps whose owner or group is the caller's\n"},
		{name: "ifdown own tap on a denied bridge", acl: "allow all\ndeny virbr0\n", prog: ifdown, owner: mine, group: noOwner, attached: true,
			want: "qemu-ifdown: tap0: bridge virbr0 denied by " + acl + ":2 (deny virbr0); deny wins over allow, remove that line to allow it\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(acl, []byte(tt.acl), 0o644); err != nil {
				t.Fatal(err)
			}
			ns := nstest.New(t)
			ns.AddBridge(t, "virbr0", 0)
			if err := ns.Do(func() error { return addOwnedTap("tap0", tt.owner, tt.group) }); err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, ns: ns}
			if tt.attached {
				if err := ns.Handle.LinkSetMaster(ns.Link(t, "tap0"), ns.Link(t, "virbr0")); err != nil {
					t.Fatal(err)
				}
			}
			before := e.port("tap0")

			cmd := exec.Command(tt.prog, "tap0")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user}
			code, err := nstest.ExitStatus(ns.Run(cmd))
			if err != nil {
				t.Fatal(err)
			}
			after := e.port("tap0")
			if tt.want != "" {
				if code != 1 || errb.String() != tt.want {
					t.Errorf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tt.want)
				}
				if after != before {
					t.Errorf("tap0 changed by a refused run: %+v -> %+v", before, after)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d, stderr %q; want 0", code, errb.String())
			}
			want := "virbr0"
			if filepath.Base(tt.prog) == "qemu-ifdown" {
				want = ""
			}
			if after.Master != want {
				t.Errorf("tap0's bridge after %s: %q, want %q (stderr %q)", filepath.Base(tt.prog), after.Master, want, errb.String())
			}
		})
	}
}

// addOwnedTap creates a persistent tap with the owner and group given
// (noOwner: none set), as "ip tuntap add NAME mode tap user U group G"
// does; vishvananda/netlink always sets both.
func addOwnedTap(name string, owner, group uint32) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return err
	}
	if owner != noOwner {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOWNER, int(owner)); err != nil {
			return err
		}
	}
	if group != noOwner {
		if err := unix.IoctlSetInt(fd, unix.TUNSETGROUP, int(group)); err != nil {
			return err
		}
	}
	return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1)
}

// TestCapabilityHelperSquattedLock: a helper run with a capability cannot
// enter root's run directory and locks with an abstract socket, a name any
// local user can bind. Another user squatting it, listening or not, must
// not make the caller's qemu-ifup wait and fail "busy": it goes on, saying
// who holds the name.
func TestCapabilityHelperSquattedLock(t *testing.T) {
	nstest.RequireRoot(t)
	_, bins := capBinaries(t, "allow virbr0\n", "qemu-ifup")
	ifup := bins["qemu-ifup"]
	user := nstest.Nobody(t)
	const squatterUID = 4242
	for _, tt := range []struct {
		name   string
		listen bool
		who    string
	}{
		{"bound only", false, "a socket that takes no connection"},
		{"listening", true, "uid 4242"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := nstest.New(t)
			ns.AddBridge(t, "virbr0", 0)
			if err := ns.Do(func() error { return addOwnedTap("tap0", user.Uid, noOwner) }); err != nil {
				t.Fatal(err)
			}
			// The squatter: another user, on a thread of its own in the
			// namespace (raw setresuid changes that thread alone).
			fdc := make(chan int, 1)
			err := ns.Do(func() error {
				if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, squatterUID, squatterUID, squatterUID); e != 0 {
					return e
				}
				fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return err
				}
				fdc <- fd
				if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@qemu-tap-helpers/tap0"}); err != nil {
					return err
				}
				if tt.listen {
					return unix.Listen(fd, 1)
				}
				return nil
			})
			if len(fdc) == 1 {
				fd := <-fdc
				t.Cleanup(func() { unix.Close(fd) })
			}
			if err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(ifup, "tap0")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user}
			code, err := nstest.ExitStatus(ns.Run(cmd))
			if err != nil {
				t.Fatal(err)
			}
			if code != 0 {
				t.Fatalf("exit %d, stderr %q; want 0", code, errb.String())
			}
			if want := "qemu-ifup: tap0: warning: lock @qemu-tap-helpers/tap0 held by " + tt.who + ", not a helper of this user: going on without it\n"; !strings.Contains(errb.String(), want) {
				t.Errorf("stderr %q lacks %q", errb.String(), want)
			}
			if m := (&env{t: t, ns: ns}).port("tap0").Master; m != "virbr0" {
				t.Errorf("tap0's bridge %q, want virbr0", m)
			}
		})
	}
}

// TestCapabilityHelperFullBacklogSquatter: a squatter that listens on the
// abstract lock name with a queue it keeps full, never accepting, must
// cost the caller's qemu-ifup at most the lock's wait, not hang it (and
// QEMU with it): it goes on with a warning.
func TestCapabilityHelperFullBacklogSquatter(t *testing.T) {
	nstest.RequireRoot(t)
	_, bins := capBinaries(t, "allow virbr0\n", "qemu-ifup")
	ifup := bins["qemu-ifup"]
	user := nstest.Nobody(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "virbr0", 0)
	if err := ns.Do(func() error { return addOwnedTap("tap0", user.Uid, noOwner) }); err != nil {
		t.Fatal(err)
	}
	// The squatter, another user: backlog 0 takes one connection, which
	// it never accepts; then the queue is full.
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	err := ns.Do(func() error {
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 4242, 4242, 4242); e != 0 {
			return e
		}
		addr := &unix.SockaddrUnix{Name: "@qemu-tap-helpers/tap0"}
		l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		fds = append(fds, l)
		if err := unix.Bind(l, addr); err != nil {
			return err
		}
		if err := unix.Listen(l, 0); err != nil {
			return err
		}
		for {
			c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
			if err != nil {
				return err
			}
			fds = append(fds, c)
			err = unix.Connect(c, addr)
			if errors.Is(err, unix.EAGAIN) {
				return nil // full
			}
			if err != nil || len(fds) > 16 {
				return fmt.Errorf("filling the squatter's queue: %v after %d connections", err, len(fds)-1)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	// Generous against a loaded machine, yet a hang fails the test rather
	// than the suite's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ifup, "tap0")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user}
	err = ns.Run(cmd)
	if ctx.Err() != nil {
		t.Fatalf("qemu-ifup hangs on a squatter whose queue is full (killed; stderr %q)", errb.String())
	}
	code, err := nstest.ExitStatus(err)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit %d, stderr %q; want 0", code, errb.String())
	}
	if want := "qemu-ifup: tap0: warning: lock @qemu-tap-helpers/tap0 held by a socket whose queue stayed full"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q lacks %q", errb.String(), want)
	}
	if m := (&env{t: t, ns: ns}).port("tap0").Master; m != "virbr0" {
		t.Errorf("tap0's bridge %q, want virbr0", m)
	}
}

// capBinaries builds progs, with an ACL file holding acl, into a directory
// every user may read, and gives each the file capability
// cap_net_admin+ep, as a package installs them. It returns the ACL file
// and the binaries by name.
func capBinaries(t *testing.T, acl string, progs ...string) (string, map[string]string) {
	t.Helper()
	dir := nstest.PublicDir(t)
	path := filepath.Join(dir, "bridge.conf")
	if err := os.WriteFile(path, []byte(acl), 0o644); err != nil {
		t.Fatal(err)
	}
	bins := map[string]string{}
	for _, p := range progs {
		bins[p] = nstest.BuildWithACL(t, dir, path, p)
		nstest.SetCap(t, bins[p], "cap_net_admin+ep")
	}
	return path, bins
}
