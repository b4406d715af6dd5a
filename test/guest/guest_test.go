package guest

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"seed", Config{}, "console=ttyS0 quiet panic=-1"},
		{"answer", Config{Answer: 3}, "console=ttyS0 quiet panic=-1 qth.answer=3"},
		{
			"cyclictest, no network",
			Config{Addrs: []string{"none"}, Gateway: "none", Ping: []string{"none"}, Cyclictest: 60 * time.Second},
			"console=ttyS0 quiet panic=-1 qth.ip=none qth.gw=none qth.ping=none qth.cyclictest=60",
		},
		{
			"two NICs",
			Config{
				Addrs:   []string{"192.168.122.10/24", "192.168.123.10/24"},
				Gateway: "none",
				Ping:    []string{"192.168.122.1", "192.168.123.1"},
				Count:   5,
				Timeout: 90 * time.Second,
			},
			"console=ttyS0 quiet panic=-1 qth.ip=192.168.122.10/24,192.168.123.10/24 qth.gw=none " +
				"qth.ping=192.168.122.1,192.168.123.1 qth.count=5 qth.timeout=90",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Append(); got != tc.want {
				t.Errorf("Append() = %q, want %q", got, tc.want)
			}
		})
	}
}

// A console as QEMU shows it: firmware escapes, a kernel message, reports.
const console = "\x1bc\x1b[?7lSeaBIOS (version 1.16.2)\r\n" +
	"Booting from ROM..\x1bc\x1b[?7l\x1b[2Jqth-guest: boot 2.13s since kernel start\r\n" +
	"[    0.016000] ..MP-BIOS bug: 8254 timer not connected to IO-APIC\n" +
	"qth-guest: ready\n" +
	"qth-guest: ping 192.168.122.1 ok 3/3\n"

func TestConsole(t *testing.T) {
	for _, tc := range []struct {
		name    string
		out     string
		result  string // "" for pass
		reports int
	}{
		{"pass", console + "qth-guest: result pass\nqth-guest: poweroff\n", "", 5},
		{"fail", console + "qth-guest: result fail: ping 192.168.122.1: 0 of 3 replies\n", "guest result fail: ping 192.168.122.1: 0 of 3 replies", 4},
		{"no result", console, "guest reported no result", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConsole(strings.NewReader(tc.out), nil)
			if err := c.WaitEnd(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			if got := c.Reports(); len(got) != tc.reports || got[0] != "boot 2.13s since kernel start" {
				t.Errorf("Reports() = %q, want %d starting with the boot line", got, tc.reports)
			}
			err := c.Result()
			switch {
			case tc.result == "" && err != nil:
				t.Errorf("Result() = %v, want nil", err)
			case tc.result != "" && (err == nil || err.Error() != tc.result):
				t.Errorf("Result() = %v, want %q", err, tc.result)
			}
		})
	}
}

func TestConsoleWait(t *testing.T) {
	r, w := io.Pipe()
	var seen []string
	c := NewConsole(r, func(l string) { seen = append(seen, l) })
	go func() {
		io.WriteString(w, "noise\nqth-guest: boot 1s\n")
		io.WriteString(w, "qth-guest: ready\n")
		w.Close()
	}()
	got, err := c.Wait("ready", 10*time.Second)
	if err != nil || got != "ready" {
		t.Fatalf("Wait(ready) = %q, %v", got, err)
	}
	// The output ends without the report waited for: an error, not a hang.
	if _, err := c.Wait("result", 10*time.Second); err == nil || !strings.Contains(err.Error(), "console ended") {
		t.Errorf("Wait(result) after EOF = %v, want an error saying the console ended", err)
	}
	if len(seen) != 3 {
		t.Errorf("each got %q, want 3 lines", seen)
	}
}

func TestConsoleWaitTimeout(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	c := NewConsole(r, nil)
	if _, err := c.Wait("ready", 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "within") {
		t.Errorf("Wait on a silent console = %v, want a timeout", err)
	}
}
