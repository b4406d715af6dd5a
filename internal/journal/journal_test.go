package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// listen stands in for journald: a datagram socket bound at a path.
func listen(t *testing.T) (path string, fd int) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "socket")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	return path, fd
}

// receive reads one entry as journald does: the datagram, or the file
// passed with it.
func receive(t *testing.T, fd int) []byte {
	t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if oobn == 0 {
		return buf[:n]
	}
	if n != 0 {
		t.Fatalf("a datagram of %d bytes came with a file", n)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "entry")
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatalf("F_GET_SEALS: %v", err)
	}
	if want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL; seals != want {
		t.Errorf("memfd seals = %#x, want %#x", seals, want)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func binaryField(k, v string) string {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(v)))
	return k + "\n" + string(n[:]) + v + "\n"
}

func TestSend(t *testing.T) {
	path, fd := listen(t)
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := strings.Repeat("x", 1<<20) // more than a datagram takes

	tests := []struct {
		name   string
		msg    string
		pri    int
		fields map[string]string
		want   string
	}{
		{
			name:   "fields sorted after priority and message",
			msg:    "qemu-ifup: tap0: up",
			pri:    6,
			fields: map[string]string{"SYSLOG_IDENTIFIER": "qemu-ifup", "QEMU_TAP": "tap0", "QEMU_BRIDGE": "virbr0"},
			want:   "PRIORITY=6\nMESSAGE=qemu-ifup: tap0: up\nQEMU_BRIDGE=virbr0\nQEMU_TAP=tap0\nSYSLOG_IDENTIFIER=qemu-ifup\n",
		},
		{
			name: "no fields",
			msg:  "boom",
			pri:  3,
			want: "PRIORITY=3\nMESSAGE=boom\n",
		},
		{
			name:   "values with a newline in the binary form",
			msg:    "two\nlines",
			pri:    3,
			fields: map[string]string{"QEMU_TAP": "a=b\n"},
			want:   "PRIORITY=3\n" + binaryField("MESSAGE", "two\nlines") + binaryField("QEMU_TAP", "a=b\n"),
		},
		{
			name: "an entry too large for a datagram goes in a memfd",
			msg:  big,
			pri:  6,
			want: "PRIORITY=6\nMESSAGE=" + big + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Send(tt.msg, tt.pri, tt.fields); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := string(receive(t, fd))
			if got != tt.want {
				if len(got) > 200 || len(tt.want) > 200 {
					t.Fatalf("entry of %d bytes, want %d", len(got), len(tt.want))
				}
				t.Errorf("entry (-want +got):\n%s", cmp.Diff(tt.want, got))
			}
		})
	}
}

func TestSendRefusesBadFieldNames(t *testing.T) {
	path, _ := listen(t)
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, k := range []string{"", "_PID", "qemu_tap", "QEMU-TAP", "QEMU TAP", "QEMU=TAP"} {
		if err := c.Send("m", 6, map[string]string{k: "v"}); err == nil {
			t.Errorf("Send with field %q succeeded, want an error", k)
		}
	}
}

func TestOpenWithoutJournald(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Open of a missing socket = %v, want ENOENT", err)
	}
	// A socket file left behind by a journald that stopped.
	path, fd := listen(t)
	unix.Close(fd)
	if _, err := Open(path); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("Open with nobody listening = %v, want ECONNREFUSED", err)
	}
}

func TestIsStream(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stream string
		want   bool
	}{
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{fmt.Sprintf("%d:%d", st.Dev+1, st.Ino), false},
		{"", false},
		{"12", false},
		{"a:b", false},
		{fmt.Sprintf("%d:%d:", st.Dev, st.Ino), false},
	}
	for _, tt := range tests {
		if got := isStream(int(f.Fd()), tt.stream); got != tt.want {
			t.Errorf("isStream(%q) = %v, want %v", tt.stream, got, tt.want)
		}
	}
}

// A helper whose environment is its caller's (nil getenv) never takes
// stderr for the journal, whatever JOURNAL_STREAM says.
func TestStderrIsJournalUntrusted(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Fstat(unix.Stderr, &st); err != nil {
		t.Fatal(err)
	}
	stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	getenv := func(k string) string {
		if k == "JOURNAL_STREAM" {
			return stream
		}
		return ""
	}
	if !StderrIsJournal(getenv) {
		t.Errorf("StderrIsJournal with JOURNAL_STREAM=%s naming stderr = false", stream)
	}
	if StderrIsJournal(nil) {
		t.Error("StderrIsJournal(nil) = true")
	}
}
