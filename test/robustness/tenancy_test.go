package robustness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// nobody is the unprivileged user of the tests.
const nobody = 65534

// asNobody runs fn inside ns on a thread that has dropped to uid and gid
// nobody, without capabilities. The thread dies with fn (nstest.NS.Do
// never hands it back), so the rest of the test keeps root.
func asNobody(t *testing.T, ns *nstest.NS, fn func() error) {
	t.Helper()
	err := ns.Do(func() error {
		// Raw syscalls act on this thread alone; Go's Setuid would
		// change every thread of the test.
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fmt.Errorf("setgroups: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, nobody, nobody, nobody); e != 0 {
			return fmt.Errorf("setresgid: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, nobody, nobody, nobody); e != 0 {
			return fmt.Errorf("setresuid: %w", e)
		}
		return fn()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An unprivileged user squatting every lock name it can think of and
// planting files where it can changes nothing: the helpers succeed rather
// than fail "busy" after the lock wait.
func TestSquattingUser(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	taps := []string{"tap0", "tap1", "vm-n0", "web-net0"}
	for _, n := range taps {
		ns.AddTap(t, n)
	}
	// As /run: a root directory others may enter but not write.
	parent := t.TempDir()
	must(t, os.Chmod(parent, 0o755))
	base := filepath.Join(parent, "qemu-tap-helpers")
	e := append(env(t, "QEMU_BRIDGE=br0"), "QEMU_TAP_HELPERS_RUNDIR="+base)

	var held []int
	t.Cleanup(func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	})
	names := append([]string{"br0", "virbr0"}, taps...)
	squat := func() (planted []string) {
		asNobody(t, ns, func() error {
			for _, n := range names {
				// The abstract socket names of the old locks.
				for _, a := range []string{"@qemu-tap-helpers/" + n, "@qemu-tap-helpers/" + n + ".lock", "@" + n} {
					fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
					if err != nil {
						return err
					}
					if err := unix.Bind(fd, &unix.SockaddrUnix{Name: a}); err != nil {
						unix.Close(fd)
						continue
					}
					held = append(held, fd)
				}
			}
			// Files where the helpers look: the base, the namespace's
			// directory, records, locks, a symlink to a record.
			id, err := rundir.NetnsID()
			if err != nil {
				return err
			}
			dir := filepath.Join(base, rundir.NetnsDir(id))
			try := []string{base, dir}
			for _, n := range taps {
				try = append(try, filepath.Join(dir, n+".conf"), filepath.Join(dir, rundir.TapLock(n)))
			}
			for _, p := range try {
				if err := os.Mkdir(p, 0o777); err == nil {
					planted = append(planted, p)
				}
				if f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o666); err == nil {
					planted = append(planted, p)
					f.Close()
				}
				if err := os.Symlink("/etc/passwd", p); err == nil {
					planted = append(planted, p)
				}
			}
			return nil
		})
		return planted
	}
	if p := squat(); len(p) > 0 {
		t.Errorf("the user planted %q before the helpers ran", p)
	}
	if len(held) == 0 {
		t.Fatal("the squatter bound no socket: the test tests nothing")
	}
	// First run creates the directories; squat again with them in place.
	if r := run(t, ns, e, "qemu-ifup", taps[0]); r.code != 0 {
		t.Fatalf("qemu-ifup %s: %d %s", taps[0], r.code, r.stderr)
	}
	if p := squat(); len(p) > 0 {
		t.Errorf("the user planted %q in the run directory", p)
	}
	for _, n := range taps {
		for _, prog := range []string{"qemu-ifup", "qemu-ifdown", "qemu-ifup"} {
			// A held lock would make the helper fail with "busy".
			r := run(t, ns, e, prog, n)
			if r.code != 0 || strings.Contains(r.stderr, "busy") {
				t.Errorf("%s %s: exit %d, %s", prog, n, r.code, r.stderr)
			}
		}
		if m := ns.MasterName(t, ns.Link(t, n)); m != "br0" {
			t.Errorf("%s: master %q, want br0", n, m)
		}
	}
}

// Two namespaces with the same tap names, each with its own record for
// it naming a different bridge, at once: each tap lands on its own
// namespace's bridge.
func TestNamespacesKeepApart(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	e := append(env(t), "QEMU_TAP_HELPERS_RUNDIR="+base)
	type side struct {
		ns     *nstest.NS
		bridge string
	}
	sides := []side{{nstest.New(t), "br-a"}, {nstest.New(t), "br-b"}}
	taps := []string{"tap0", "vm-net0", "vm-net1"}
	for _, s := range sides {
		s.ns.AddBridge(t, s.bridge, 0)
		// The other side's bridge exists too, as a decoy.
		for _, o := range sides {
			if o.bridge != s.bridge {
				s.ns.AddBridge(t, o.bridge, 0)
			}
		}
		for _, n := range taps {
			s.ns.AddTap(t, n)
		}
		// Records as qemu-launch leaves them: signed by a live process
		// (this one), in the namespace's own directory.
		err := s.ns.Do(func() error {
			d, err := rundir.Open(base)
			if err != nil {
				return err
			}
			defer d.Close()
			for _, n := range taps {
				if err := d.WriteRecord(n, []byte("[Interface]\nBridge="+s.bridge+"\n")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	for _, s := range sides {
		for _, n := range taps {
			wg.Add(1)
			st := start(t, s.ns, e, "qemu-ifup", n)
			go func() {
				defer wg.Done()
				err := st.cmd.Wait()
				if err != nil {
					mu.Lock()
					fails = append(fails, fmt.Sprintf("qemu-ifup %s in %s: %v: %s", n, s.ns.Name, err, st.stderr.String()))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, f := range fails {
		t.Error(f)
	}
	for _, s := range sides {
		for _, n := range taps {
			if m := s.ns.MasterName(t, s.ns.Link(t, n)); m != s.bridge {
				t.Errorf("%s in %s: master %q, want %s", n, s.ns.Name, m, s.bridge)
			}
		}
	}
}

// A record left by a qemu-launch killed with SIGKILL is recognised as
// stale: qemu-ifup says so, removes it and goes by the other settings.
func TestStaleRecordAfterSIGKILL(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	// The record's bridge exists (qemu-launch checks before it starts
	// QEMU): the tap must still not go there once the record is stale.
	ns.AddBridge(t, "br-gone", 0)
	base := filepath.Join(t.TempDir(), "run")
	e := append(env(t, "QEMU_BRIDGE=br0"), "QEMU_TAP_HELPERS_RUNDIR="+base)
	// A QEMU that never answers on QMP keeps the launcher waiting with
	// its record written.
	qemu := filepath.Join(t.TempDir(), "qemu")
	must(t, os.WriteFile(qemu, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755))
	l := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--bridge", "br-gone", "--",
		qemu, "-name", "vm", "-netdev", "tap,id=n0")
	l.Env = e
	l.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ns.Start(l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-l.Process.Pid, syscall.SIGKILL) })
	record := filepath.Join(ns.RunDir(t, base), "vm-n0.conf")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(record); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu-launch wrote no record")
		}
	}
	must(t, l.Process.Signal(syscall.SIGKILL))
	l.Wait()

	ns.AddTap(t, "vm-n0")
	r := run(t, ns, e, "qemu-ifup", "vm-n0")
	if r.code != 0 || !strings.Contains(r.stderr, "removed stale record "+record+": its qemu-launch (pid "+fmt.Sprint(l.Process.Pid)+") is gone") {
		t.Errorf("qemu-ifup: exit %d, stderr %q; want 0 and the stale record named", r.code, r.stderr)
	}
	if m := ns.MasterName(t, ns.Link(t, "vm-n0")); m != "br0" {
		t.Errorf("vm-n0: master %q, want br0 (QEMU_BRIDGE), not the stale record's", m)
	}
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record still there: %v", err)
	}
}

// A record that does not parse makes qemu-ifdown warn, and it still
// detaches the tap and removes the record.
func TestBrokenRecordAtIfdown(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	ns.AddTap(t, "tap0")
	base := filepath.Join(t.TempDir(), "run")
	e := append(env(t, "QEMU_BRIDGE=br0"), "QEMU_TAP_HELPERS_RUNDIR="+base)
	if r := run(t, ns, e, "qemu-ifup", "tap0"); r.code != 0 {
		t.Fatalf("qemu-ifup: %d %s", r.code, r.stderr)
	}
	record := filepath.Join(ns.RunDir(t, base), "tap0.conf")
	must(t, os.WriteFile(record, []byte("[Interface]\nBridge=br0\nMTU=jumbo\n"), 0o600))
	r := run(t, ns, e, "qemu-ifdown", "tap0")
	if r.code != 0 || !strings.Contains(r.stderr, "qemu-ifdown: tap0: warning: "+record+":3: MTU") ||
		!strings.Contains(r.stderr, "detach from br0") {
		t.Errorf("qemu-ifdown: exit %d, stderr %q; want 0, a warning naming %s:3 and the detach", r.code, r.stderr, record)
	}
	if m := ns.MasterName(t, ns.Link(t, "tap0")); m != "" {
		t.Errorf("tap0 still a port of %s", m)
	}
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("broken record still there: %v", err)
	}
}

// Names that could inject are refused everywhere: a tap named like an
// option cannot make a helper print help and succeed (QEMU runs the
// up-script with the tap's name alone); commas, '=' and non-ASCII are
// refused in helper arguments, -netdev ifname= and VM files; a name
// derived from -name is sanitised.
func TestNamesCannotInject(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0", 0)
	e := env(t, "QEMU_BRIDGE=br0")
	for _, n := range []string{"--help", "-h", "--version"} {
		ns.AddTap(t, n)
		for _, prog := range commands {
			cmd := exec.Command(filepath.Join(nstest.Binaries(t), prog), n)
			cmd.Env = e
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			code, err := nstest.ExitStatus(ns.Run(cmd))
			if err != nil {
				t.Fatal(err)
			}
			if code != 1 || stdout.Len() > 0 {
				t.Errorf("%s %s (a tap of that name exists): exit %d, stdout %q; want 1 and no help", prog, n, code, stdout.String())
			}
			checkOneLine(t, prog, stderr.String(), "starts with '-' (reads as an option)")
		}
	}
	// QEMU's syntax, non-ASCII, printf verbs and Unicode format
	// characters (a right-to-left override turns a log line around).
	for _, n := range []string{"a,script=x", "a=b", "t\u00e4p", "tap%n%s", "tap\u202e0", "tap\u200b"} {
		for _, prog := range commands {
			r := run(t, ns, e, prog, n)
			if r.code != 2 || !strings.Contains(r.stderr, "invalid interface name") {
				t.Errorf("%s %q: exit %d, %q; want 2 naming the invalid name", prog, n, r.code, r.stderr)
			}
		}
	}

	qemu, marker := fakeQEMU(t)
	vmfile := func(body string) string {
		p := filepath.Join(nstest.TrustedDir(t), "vm.conf")
		must(t, os.WriteFile(p, []byte("[VM]\nQEMU="+qemu+"\n"+body), 0o644))
		return p
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"ifname with comma", []string{qemu, "-netdev", "tap,id=n0,ifname=a,,script=x"}, `contains ','`},
		{"ifname with =", []string{qemu, "-netdev", "tap,id=n0,ifname=a=b"}, `contains '='`},
		{"ifname like an option", []string{qemu, "-netdev", "tap,id=n0,ifname=--help"}, "starts with '-'"},
		{"ifname not ASCII", []string{qemu, "-netdev", "tap,id=n0,ifname=t\u00e4p"}, "not printable ASCII"},
		{"--bridge with comma", []string{"--bridge", "br,0", qemu}, `contains ','`},
		{"VM file ifname", []string{"--config", vmfile("[NIC]\nID=n0\nIfname=a,b\n")}, `contains ','`},
		{"VM file bridge", []string{"--config", vmfile("[NIC]\nID=n0\nBridge=-br\n")}, "starts with '-'"},
	} {
		r := run(t, ns, e, "qemu-launch", tt.args...)
		if r.code == 0 || !strings.HasPrefix(r.stderr, "qemu-launch: ") || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want a failure containing %q", tt.name, r.code, r.stderr, tt.want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("QEMU was started")
	}
	// A VM name with QEMU's syntax and a leading '-' gives a tap name
	// with neither.
	cmd := exec.Command(filepath.Join(nstest.Binaries(t), "qemu-launch"), "--dry-run", "--",
		qemu, "-name", "guest=-x,,y=z%s\u202e", "-netdev", "tap,id=n0")
	cmd.Env = e
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qemu-launch --dry-run: %v", err)
	}
	m := regexp.MustCompile(`ifname=([^ ,']*)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("dry run names no tap:\n%s", out)
	}
	if err := link.ValidateName(m[1]); err != nil {
		t.Errorf("derived tap name: %v", err)
	}
}

// A VM file that is a FIFO, or too large, is an error, not a hang.
func TestVMFileNotRegular(t *testing.T) {
	ns := nstest.New(t)
	dir := nstest.TrustedDir(t)
	fifo := filepath.Join(dir, "vm.conf")
	must(t, unix.Mkfifo(fifo, 0o644))
	big := filepath.Join(dir, "big.conf")
	must(t, os.WriteFile(big, []byte("[VM]\n"+strings.Repeat("# padding\n", 7000)), 0o644))
	for file, want := range map[string]string{fifo: "not a regular file but a FIFO", big: "larger than 65536 bytes"} {
		r := run(t, ns, env(t), "qemu-launch", "--config", file)
		if r.code != 1 {
			t.Errorf("qemu-launch --config %s: exit %d, want 1", file, r.code)
		}
		checkOneLine(t, "qemu-launch", r.stderr, want)
	}
}
