package integration

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

const journalSocket = "/run/systemd/journal/socket"

// TestJournal listens where journald would and checks the entries the
// helpers send: SYSLOG_IDENTIFIER and fields naming the tap and bridge.
func TestJournal(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(journalSocket); err == nil {
		t.Skip("journald runs on this machine; its socket cannot be borrowed for the test")
	}
	const dir = "/run/systemd/journal"
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: journalSocket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		os.Remove(journalSocket)
	})
	e.ns.AddBridge(t, "virbr0", 0)
	e.ns.AddTap(t, "jrnl0")
	r := e.run("qemu-ifup", "--quiet", "jrnl0")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("qemu-ifup --quiet: %v", r)
	}
	r = e.run("qemu-ifup", "jrnl9")
	if r.code != 1 || r.stderr != "qemu-ifup: jrnl9: no such interface\n" {
		t.Fatalf("qemu-ifup jrnl9: %v", r)
	}

	var entries []map[string]string
	buf := make([]byte, 64<<10)
	for {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		fields := map[string]string{}
		for _, l := range strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				fields[k] = v
			}
		}
		// Other test packages may run helpers meanwhile: keep ours.
		if strings.HasPrefix(fields["QEMU_TAP"], "jrnl") {
			entries = append(entries, fields)
		}
	}
	// mac, attach, promisc, up (the MTU already matches), then the error.
	if len(entries) != 4+1 {
		t.Fatalf("got %d journal entries, want 4 changes and 1 error: %v", len(entries), entries)
	}
	attach := entries[1]
	if attach["MESSAGE"] != "qemu-ifup: jrnl0: attach to virbr0 (bridge from default)" ||
		attach["SYSLOG_IDENTIFIER"] != "qemu-ifup" || attach["QEMU_TAP"] != "jrnl0" ||
		attach["QEMU_BRIDGE"] != "virbr0" || attach["PRIORITY"] != "6" {
		t.Errorf("attach entry = %v", attach)
	}
	if last := entries[4]; last["MESSAGE"] != "qemu-ifup: jrnl9: no such interface" || last["PRIORITY"] != "3" ||
		last["QEMU_TAP"] != "jrnl9" {
		t.Errorf("error entry = %v", last)
	}
}
