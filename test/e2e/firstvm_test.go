package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/test/guest"
)

// firstVMMarker precedes each README block that TestFirstVM runs.
const firstVMMarker = "<!-- test/e2e TestFirstVM runs the commands of the next block. -->"

// readmeBlocks returns the indented code blocks after each marker in
// README.md, as written.
func readmeBlocks(t *testing.T, root, marker string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(data), marker)
	var blocks []string
	for _, after := range parts[1:] {
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(after))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "    ") {
				lines = append(lines, strings.TrimPrefix(line, "    "))
			} else if len(lines) > 0 && strings.TrimSpace(line) != "" {
				break
			}
		}
		if len(lines) == 0 {
			t.Fatalf("README.md: no code block after %q", marker)
		}
		blocks = append(blocks, strings.Join(lines, "\n")+"\n")
	}
	return blocks
}

// TestFirstVM runs the README's first-VM commands, raw QEMU and
// qemu-launch, exactly as written, against make guest's guest: from a
// directory whose .cache/guest is the built guest, with our helpers as
// /etc/qemu-ifup and /etc/qemu-ifdown (bind-mounted in a private mount
// namespace, as the package links them) and qemu-launch on PATH. Each
// guest must come up on a tap of virbr0, answer the host's pings, give a
// shell on its console and power off from it, leaving virbr0 no ports.
func TestFirstVM(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireTool(t, qemuBinary, "qemu-system-x86")
	nstest.RequireTool(t, "busybox", "busybox-static")
	nstest.RequireTool(t, "unshare", "util-linux")
	root, err := nstest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, root, firstVMMarker)
	if len(blocks) != 2 {
		t.Fatalf("README.md: %d blocks after %q, want 2 (raw QEMU, qemu-launch)", len(blocks), firstVMMarker)
	}
	var log strings.Builder
	g, err := guest.BuildLogin(&log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, f := range []string{"/etc/qemu-ifup", "/etc/qemu-ifdown"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: qemu-system-common's scripts are where the test mounts the helpers", err)
		}
	}
	bin := nstest.Binaries(t)
	for i, name := range []string{"qemu", "qemu-launch"} {
		t.Run(name, func(t *testing.T) {
			ns := nstest.New(t)
			addBridge(t, ns, "virbr0", "192.168.122.1/24", 0)
			runFirstVM(t, ns, blocks[i], g, bin, "192.168.122.10")
		})
	}
	// The guest with ip=dhcp, as the README offers where the bridge has a
	// DHCP server (libvirt's dnsmasq, networkd's): here busybox udhcpd.
	const static = "ip=192.168.122.10::192.168.122.1:255.255.255.0"
	if !strings.Contains(blocks[0], static) {
		t.Fatalf("README's first VM does not give the guest %s", static)
	}
	t.Run("dhcp", func(t *testing.T) {
		ns := nstest.New(t)
		addBridge(t, ns, "virbr0", "192.168.122.1/24", 0)
		startDHCPServer(t, ns)
		runFirstVM(t, ns, strings.Replace(blocks[0], static, "ip=dhcp", 1), g, bin, "192.168.122.100")
	})
}

// startDHCPServer runs busybox udhcpd on virbr0 in ns, leasing from
// 192.168.122.100 alone (udhcpd picks from its pool by the MAC) with the
// gateway 192.168.122.1.
func startDHCPServer(t *testing.T, ns *nstest.NS) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "udhcpd.conf")
	data := "start 192.168.122.100\nend 192.168.122.100\ninterface virbr0\n" +
		"option subnet 255.255.255.0\noption router 192.168.122.1\n" +
		"lease_file " + filepath.Join(dir, "leases") + "\npidfile " + filepath.Join(dir, "pid") + "\n"
	if err := os.WriteFile(conf, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "leases"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("busybox", "udhcpd", "-f", conf)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := ns.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("udhcpd:\n%s", out.String())
		}
	})
}

// runFirstVM runs a README block in ns, which has virbr0, and checks the
// guest comes up with addr on a tap of virbr0, answers pings, gives a
// shell on its console and powers off from it.
func runFirstVM(t *testing.T, ns *nstest.NS, script string, g guest.Files, bin, addr string) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(g.Kernel), filepath.Join(dir, ".cache", "guest")); err != nil {
		t.Fatal(err)
	}
	// The guest's files as make guest names them.
	for _, f := range []string{g.Kernel, g.Initrd} {
		if !strings.Contains(script, ".cache/guest/"+filepath.Base(f)) {
			t.Fatalf("README block does not boot .cache/guest/%s:\n%s", filepath.Base(f), script)
		}
	}
	mounts := "mount --bind " + bin + "/qemu-ifup /etc/qemu-ifup && mount --bind " + bin + "/qemu-ifdown /etc/qemu-ifdown && exec sh -c \"$1\""
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", mounts, "sh", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), helperEnv(dir)...)
	cmd.Env = append(cmd.Env, "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t.Logf("in %s, from a directory with .cache/guest:\n%s", ns.Name, script)
	if err := ns.Start(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once waitErr is set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("output:\n%s", out.String())
		}
	})

	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(bootTimeout)
		for !strings.Contains(out.String(), what) {
			select {
			case <-exited:
				t.Fatalf("exited (%v) before %q", waitErr, what)
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q within %v", what, bootTimeout)
			}
		}
	}
	waitFor("guest: network: eth0 " + addr + "/24, gateway 192.168.122.1")
	tap := onlyTap(t, ns)
	checkPort(t, ns, tap, "virbr0")
	hostPing(t, ns, addr, 3)

	waitFor("Please press Enter to activate this console.")
	io.WriteString(stdin, "\n")
	waitFor("root@guest:/# ")
	io.WriteString(stdin, "poweroff\n")
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("exited with %v after poweroff, want status 0", waitErr)
		}
	case <-time.After(exitTimeout):
		t.Fatalf("still running %v after poweroff", exitTimeout)
	}
	if left := ports(t, ns, "virbr0"); len(left) != 0 {
		t.Errorf("virbr0 still has ports %q after the guest powered off", left)
	}
}
