// Package integration runs the built qemu-ifup and qemu-ifdown binaries, as
// QEMU runs them, inside throwaway network namespaces, and checks through
// netlink what a user would see: master, flags, MTU, MAC.
package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// env is a test's environment: its namespace, binaries and files.
type env struct {
	t      testing.TB
	ns     *nstest.NS
	bin    string
	runDir string
	config string // QEMU_IFUP_CONFIG; a missing file unless written
	vars   []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	nstest.RequireRoot(t)
	bin := nstest.Binaries(t)
	dir := t.TempDir()
	return &env{t: t, ns: nstest.New(t), bin: bin,
		runDir: filepath.Join(dir, "run"), config: filepath.Join(dir, "qemu-ifup.conf")}
}

func (e *env) writeConfig(s string) {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// result is what a run of a helper showed the user.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// run runs a helper inside the namespace the way QEMU does, with the
// test's config and run dir in the environment.
func (e *env) run(prog string, args ...string) result {
	e.t.Helper()
	return e.runCmd(e.cmd(prog, args...))
}

func (e *env) cmd(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(e.bin, prog), args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"QEMU_IFUP_CONFIG=" + e.config, "QEMU_TAP_HELPERS_RUNDIR=" + e.runDir}, e.vars...)
	return cmd
}

func (e *env) runCmd(cmd *exec.Cmd) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	code, err := nstest.ExitStatus(e.ns.Run(cmd))
	if err != nil {
		e.t.Fatalf("run %s: %v", cmd.Path, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// port is the tap as ip -d link shows it.
func (e *env) port(name string) nstest.Port {
	e.t.Helper()
	return e.ns.Snapshot(e.t, name)
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestSeedProcedure is the seed's ifup and ifdown on virbr0, with the
// bridge's MTU lower than the tap's.
func TestSeedProcedure(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 1400)
	mac := e.ns.AddTap(t, "tap0").Attrs().HardwareAddr.String()

	r := e.run("qemu-ifup", "tap0")
	want := []string{
		"qemu-ifup: tap0: mtu 1500 -> 1400",
		"qemu-ifup: tap0: mac " + mac + " -> fe" + mac[2:],
		"qemu-ifup: tap0: attach to virbr0 (bridge from default)",
		"qemu-ifup: tap0: promisc on",
		"qemu-ifup: tap0: up",
	}
	if r.code != 0 || strings.Join(lines(r.stderr), "\n") != strings.Join(want, "\n") || r.stdout != "" {
		t.Fatalf("qemu-ifup tap0: %v, want exit 0 and\n%s", r, strings.Join(want, "\n"))
	}
	p := e.port("tap0")
	if want := (nstest.Port{Exists: true, Index: p.Index, Master: "virbr0", MTU: 1400, MAC: "fe" + mac[2:], Promisc: true, Up: true}); p != want {
		t.Errorf("tap0 = %+v, want %+v", p, want)
	}
	if mtu := e.ns.Link(t, "virbr0").Attrs().MTU; mtu != 1400 {
		t.Errorf("virbr0 mtu = %d, want 1400", mtu)
	}

	// Idempotent: the second run changes nothing.
	r = e.run("qemu-ifup", "tap0")
	if r.code != 0 || r.stderr != "qemu-ifup: tap0: already a port of virbr0 as configured, nothing changed\n" {
		t.Errorf("second qemu-ifup: %v", r)
	}
	if p2 := e.port("tap0"); p2 != p {
		t.Errorf("second qemu-ifup changed tap0: %+v -> %+v", p, p2)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 0 || r.stdout != "tap0: port of virbr0 as configured\n" {
		t.Errorf("qemu-ifup --check on a configured tap: %v", r)
	}

	r = e.run("qemu-ifdown", "tap0")
	if r.code != 0 || r.stderr != "qemu-ifdown: tap0: promisc off\nqemu-ifdown: tap0: detach from virbr0\n" {
		t.Errorf("qemu-ifdown tap0: %v", r)
	}
	// ifdown leaves the link state to QEMU.
	if p := e.port("tap0"); p.Master != "" || p.Promisc || !p.Up {
		t.Errorf("tap0 after ifdown = %+v, want detached, not promiscuous, still up", p)
	}
	if r := e.run("qemu-ifup", "--check", "tap0"); r.code != 1 ||
		r.stderr != "qemu-ifup: tap0: differs from the configuration: attach to virbr0, promisc on\n" {
		t.Errorf("qemu-ifup --check on a detached tap: %v", r)
	}
	r = e.run("qemu-ifdown", "tap0")
	if r.code != 0 || r.stderr != "qemu-ifdown: tap0: on no bridge, nothing to do\n" {
		t.Errorf("qemu-ifdown of a detached tap: %v", r)
	}
	if err := e.ns.Handle.LinkDel(e.ns.Link(t, "tap0")); err != nil {
		t.Fatal(err)
	}
	r = e.run("qemu-ifdown", "tap0")
	if r.code != 0 || r.stderr != "qemu-ifdown: tap0: already gone, nothing to do\n" {
		t.Errorf("qemu-ifdown of a removed tap: %v", r)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddBridge(t, "br1", 0)
	e.ns.AddTap(t, "tap0")
	e.ns.AddTap(t, "tap1")
	if err := e.ns.Handle.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}); err != nil {
		t.Fatal(err)
	}
	if r := e.run("qemu-ifup", "tap1"); r.code != 0 {
		t.Fatalf("qemu-ifup tap1: %v", r)
	}
	tests := []struct {
		name string
		vars []string
		args []string
		code int
		msg  string
	}{
		{"no such interface", nil, []string{"tap9"}, 1, "qemu-ifup: tap9: no such interface"},
		{"bridge not found", []string{"QEMU_BRIDGE=br9"}, []string{"tap0"}, 1, "qemu-ifup: tap0: bridge br9 not found (Linux bridges here: br1, virbr0)"},
		{"not a bridge", []string{"QEMU_BRIDGE=veth0"}, []string{"tap0"}, 1, "qemu-ifup: tap0: veth0 is not a bridge (veth)"},
		{"not a tap", nil, []string{"veth0"}, 1, "qemu-ifup: veth0: not a tap interface (veth)"},
		{"on another bridge", []string{"QEMU_BRIDGE=br1"}, []string{"tap1"}, 1,
			"qemu-ifup: tap1: already a port of virbr0, not br1 (AllowMove=yes in the config moves it)"},
		{"bad QEMU_BRIDGE", []string{"QEMU_BRIDGE=br 1"}, []string{"tap0"}, 1,
			`qemu-ifup: tap0: QEMU_BRIDGE: invalid interface name "br 1": contains whitespace`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.port("tap0")
			e.vars = tt.vars
			r := e.run("qemu-ifup", tt.args...)
			if r.code != tt.code || r.stderr != tt.msg+"\n" || r.stdout != "" {
				t.Errorf("qemu-ifup %q: %v, want exit %d and %q", tt.args, r, tt.code, tt.msg)
			}
			if after := e.port("tap0"); after != before {
				t.Errorf("tap0 changed by a failed run: %+v -> %+v", before, after)
			}
		})
	}
	e.vars = nil
	if r := e.run("qemu-ifdown", "veth0"); r.code != 1 || r.stderr != "qemu-ifdown: veth0: not a tap interface (veth)\n" {
		t.Errorf("qemu-ifdown veth0: %v", r)
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "tap0")
	before := e.port("tap0")
	for _, prog := range []string{"qemu-ifup", "qemu-ifdown"} {
		for _, args := range [][]string{nil, {"tap0", "tap1"}, {""}, {"tap0-is-too-long"}, {"tap\n0"}, {"../x"}, {".."}, {"--bogus", "tap0"}} {
			r := e.run(prog, args...)
			l := lines(r.stderr)
			if r.code != 2 || len(l) != 2 || !strings.HasPrefix(l[0], prog+": ") || !strings.HasPrefix(l[1], "usage: "+prog+" ") {
				t.Errorf("%s %q: %v, want exit 2, the problem and a usage line", prog, args, r)
			}
		}
		if r := e.run(prog, "--help"); r.code != 0 || !strings.HasPrefix(r.stdout, "usage: "+prog) {
			t.Errorf("%s --help: %v", prog, r)
		}
		if r := e.run(prog, "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, prog+" ") {
			t.Errorf("%s --version: %v", prog, r)
		}
	}
	if after := e.port("tap0"); after != before {
		t.Errorf("usage errors changed tap0: %+v -> %+v", before, after)
	}
}

// TestBridgeChoice checks the order: record, QEMU_BRIDGE, config rule,
// config defaults, virbr0.
func TestBridgeChoice(t *testing.T) {
	e := newEnv(t)
	for _, br := range []string{"virbr0", "br-def", "br-rule", "br-env", "br-rec"} {
		e.ns.AddBridge(t, br, 0)
	}
	config := "[Defaults]\nBridge=br-def\n\n[Interface]\nName=rt-* vm7-*\nBridge=br-rule\nMTU=1280\n"
	tests := []struct {
		name, tap  string
		config     string
		vars       []string
		record     string
		wantBridge string
		wantFrom   string
		wantMTU    int
	}{
		{"default virbr0", "tap0", "", nil, "", "virbr0", "default", 1500},
		{"config defaults", "tap1", config, nil, "", "br-def", "qemu-ifup.conf:2", 1500},
		{"config rule", "rt-1", config, nil, "", "br-rule", "qemu-ifup.conf:6", 1280},
		{"QEMU_BRIDGE over the config", "vm7-a", config, []string{"QEMU_BRIDGE=br-env"}, "", "br-env", "QEMU_BRIDGE", 1280},
		{"record over everything", "rt-2", config, []string{"QEMU_BRIDGE=br-env"},
			"[Interface]\nBridge=br-rec\nMTU=1400\n", "br-rec", "rt-2.conf:2", 1400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(e.config)
			if tt.config != "" {
				e.writeConfig(tt.config)
			}
			if tt.record != "" {
				e.ns.PlantRecord(t, e.runDir, tt.tap, tt.record)
			}
			e.ns.AddTap(t, tt.tap)
			e.vars = tt.vars
			r := e.run("qemu-ifup", tt.tap)
			if r.code != 0 || !strings.Contains(r.stderr, "attach to "+tt.wantBridge+" (bridge from ") ||
				!strings.Contains(r.stderr, tt.wantFrom+")") {
				t.Fatalf("qemu-ifup %s: %v, want it attached to %s (bridge from ...%s)", tt.tap, r, tt.wantBridge, tt.wantFrom)
			}
			if p := e.port(tt.tap); p.Master != tt.wantBridge || p.MTU != tt.wantMTU {
				t.Errorf("%s = %+v, want master %s, mtu %d", tt.tap, p, tt.wantBridge, tt.wantMTU)
			}
			if r := e.run("qemu-ifdown", tt.tap); r.code != 0 || !strings.Contains(r.stderr, "detach from "+tt.wantBridge) {
				t.Errorf("qemu-ifdown %s: %v", tt.tap, r)
			}
			if _, err := os.Stat(filepath.Join(e.ns.RunDir(t, e.runDir), tt.tap+".conf")); !os.IsNotExist(err) {
				t.Errorf("qemu-ifdown left the record of %s: %v", tt.tap, err)
			}
		})
	}
}

func TestConfigOptions(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddBridge(t, "br1", 0)
	e.writeConfig(`[Interface]
Name=keep*
MAC=keep
Promiscuous=no

[Interface]
Name=move*
Bridge=br1
AllowMove=yes
`)
	mac := e.ns.AddTap(t, "keep0").Attrs().HardwareAddr.String()
	if r := e.run("qemu-ifup", "keep0"); r.code != 0 {
		t.Fatalf("qemu-ifup keep0: %v", r)
	}
	if p := e.port("keep0"); p.MAC != mac || p.Promisc || p.Master != "virbr0" || !p.Up {
		t.Errorf("keep0 = %+v, want its own MAC %s, not promiscuous, on virbr0, up", p, mac)
	}
	// ifdown leaves alone the promiscuous mode ifup did not set.
	if err := e.ns.Handle.SetPromiscOn(e.ns.Link(t, "keep0")); err != nil {
		t.Fatal(err)
	}
	if r := e.run("qemu-ifdown", "keep0"); r.code != 0 || r.stderr != "qemu-ifdown: keep0: detach from virbr0\n" {
		t.Errorf("qemu-ifdown keep0: %v", r)
	}
	if p := e.port("keep0"); !p.Promisc {
		t.Errorf("qemu-ifdown turned off a promiscuous mode it did not set")
	}

	e.ns.AddTap(t, "move0")
	e.vars = []string{"QEMU_BRIDGE=virbr0"}
	if r := e.run("qemu-ifup", "move0"); r.code != 0 {
		t.Fatalf("qemu-ifup move0 onto virbr0: %v", r)
	}
	e.vars = nil
	r := e.run("qemu-ifup", "move0")
	if r.code != 0 || !strings.Contains(r.stderr, "qemu-ifup: move0: move from virbr0 to br1") {
		t.Errorf("qemu-ifup move0 with AllowMove=yes: %v", r)
	}
	if p := e.port("move0"); p.Master != "br1" {
		t.Errorf("move0 master = %s, want br1", p.Master)
	}

	e.writeConfig("[Defaults]\nBridge=virbr0\nMTU=huge\n")
	r = e.run("qemu-ifup", "move0")
	if want := "qemu-ifup: move0: " + e.config + `:3: MTU: "huge" is not "bridge" or a number from 68 to 65535` + "\n"; r.code != 1 || r.stderr != want {
		t.Errorf("qemu-ifup with a bad config: %v, want %q", r, want)
	}
}

func TestDryRunAndQuiet(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 9000)
	mac := e.ns.AddTap(t, "tap0").Attrs().HardwareAddr.String()
	before := e.port("tap0")
	r := e.run("qemu-ifup", "--dry-run", "tap0")
	want := "tap0: mtu 1500 -> 9000\ntap0: mac " + mac + " -> fe" + mac[2:] + "\ntap0: attach to virbr0\ntap0: promisc on\ntap0: up\n"
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("qemu-ifup --dry-run: %v, want stdout %q", r, want)
	}
	if after := e.port("tap0"); after != before {
		t.Errorf("--dry-run changed tap0: %+v -> %+v", before, after)
	}
	r = e.run("qemu-ifup", "--check", "tap0")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "qemu-ifup: tap0: differs from the configuration: mtu 1500 -> 9000, mac ") {
		t.Errorf("qemu-ifup --check on a fresh tap: %v", r)
	}
	if r := e.run("qemu-ifup", "--quiet", "tap0"); r.code != 0 || r.stderr != "" || r.stdout != "" {
		t.Errorf("qemu-ifup --quiet: %v, want silence", r)
	}
	if p := e.port("tap0"); p.Master != "virbr0" || p.MTU != 9000 {
		t.Errorf("tap0 after --quiet = %+v", p)
	}
	if r := e.run("qemu-ifdown", "--dry-run", "tap0"); r.code != 0 || r.stdout != "tap0: promisc off\ntap0: detach from virbr0\n" {
		t.Errorf("qemu-ifdown --dry-run: %v", r)
	}
	if p := e.port("tap0"); p.Master != "virbr0" {
		t.Errorf("qemu-ifdown --dry-run detached tap0")
	}
	if r := e.run("qemu-ifdown", "--quiet", "tap0"); r.code != 0 || r.stderr != "" {
		t.Errorf("qemu-ifdown --quiet: %v", r)
	}
}

// TestUndoAfterFailure makes the attach fail after the MTU and the MAC were
// changed (a macvlan on the tap holds its receive handler, so the bridge
// refuses it) and checks that the tap is left as it was.
func TestUndoAfterFailure(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 1400)
	tapLink := e.ns.AddTap(t, "tap0")
	if err := e.ns.Handle.LinkAdd(&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "mv0",
		ParentIndex: tapLink.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		t.Fatal(err)
	}
	before := e.port("tap0")
	r := e.run("qemu-ifup", "tap0")
	want := "qemu-ifup: attach tap0 to virbr0: device or resource busy (earlier changes undone)\n"
	if r.code != 1 || !strings.HasSuffix(r.stderr, want) {
		t.Errorf("qemu-ifup: %v, want exit 1 ending %q", r, want)
	}
	if after := e.port("tap0"); after != before {
		t.Errorf("tap0 half-configured after a failure: %+v, was %+v", after, before)
	}
}

// TestConcurrentIfups starts 32 ifups on one bridge at once, as a host
// starting many VMs does.
func TestConcurrentIfups(t *testing.T) {
	const n = 32
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	for i := 0; i < n; i++ {
		e.ns.AddTap(t, fmt.Sprintf("tap%d", i))
	}
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errb bytes.Buffer
			cmd := e.cmd("qemu-ifup", fmt.Sprintf("tap%d", i))
			cmd.Stdout, cmd.Stderr = &out, &errb
			// No t.Fatal off the test goroutine: a failure to run
			// is kept as exit -1 with its error.
			code, err := nstest.ExitStatus(e.ns.Run(cmd))
			results[i] = result{code: code, stdout: out.String(), stderr: errb.String()}
			if err != nil {
				results[i].stderr += err.Error()
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("qemu-ifup tap%d: %v", i, r)
		}
		if p := e.port(fmt.Sprintf("tap%d", i)); p.Master != "virbr0" || !p.Up || !p.Promisc {
			t.Errorf("tap%d = %+v", i, p)
		}
	}
}

// TestSecureIgnoresEnvironment runs qemu-ifup with a file capability as an
// unprivileged user (AT_SECURE): QEMU_BRIDGE, QEMU_IFUP_CONFIG and
// QEMU_TAP_HELPERS_RUNDIR must not steer it. The tap is that user's and
// the bridge ACL allows virbr0, as a capability-holding qemu-ifup requires
// (TestCapabilityHelpers has the refusals).
func TestSecureIgnoresEnvironment(t *testing.T) {
	e := newEnv(t)
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddBridge(t, "br-env", 0)
	if err := e.ns.Do(func() error { return addOwnedTap("tap0", 65534, noOwner) }); err != nil {
		t.Fatal(err)
	}

	dir := nstest.PublicDir(t)
	acl := filepath.Join(dir, "bridge.conf")
	if err := os.WriteFile(acl, []byte("allow virbr0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prog := nstest.BuildWithACL(t, dir, acl, "qemu-ifup")
	// struct vfs_cap_data, revision 2: CAP_NET_ADMIN permitted and effective.
	caps := make([]byte, 20)
	binary.LittleEndian.PutUint32(caps[0:], 0x02000000|1)
	binary.LittleEndian.PutUint32(caps[4:], 1<<unix.CAP_NET_ADMIN)
	if err := unix.Setxattr(prog, "security.capability", caps, 0); err != nil {
		t.Fatalf("set file capability: %v", err)
	}
	cmd := exec.Command(prog, "tap0")
	cmd.Env = []string{"QEMU_BRIDGE=br-env", "QEMU_IFUP_CONFIG=/nonexistent", "QEMU_TAP_HELPERS_RUNDIR=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	r := e.runCmd(cmd)
	if strings.Contains(r.stderr, "br-env") {
		t.Errorf("qemu-ifup with AT_SECURE followed QEMU_BRIDGE: %v", r)
	}
	if _, err := os.Stat("/etc/qemu-ifup.conf"); os.IsNotExist(err) {
		// Without a host config the default bridge applies.
		if p := e.port("tap0"); r.code != 0 || p.Master != "virbr0" {
			t.Errorf("qemu-ifup with AT_SECURE: %v, tap0 %+v; want it on virbr0", r, p)
		}
	}
	// Without the capability the same binary follows the environment.
	e.vars = []string{"QEMU_BRIDGE=br-env"}
	r = e.run("qemu-ifup", "--dry-run", "tap0")
	if !strings.Contains(r.stdout+r.stderr, "br-env") {
		t.Errorf("qemu-ifup --dry-run without AT_SECURE ignored QEMU_BRIDGE: %v", r)
	}
}
