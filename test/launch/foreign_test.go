package launch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
)

// fakeQEMU writes a QEMU that answers on its QMP socket (fd 3) as QEMU
// does, but names the threads it is told to: a QEMU whose monitor its
// user has taken over (pidfd_getfd) to answer for it. Its vCPU 0 is its
// own main thread. It probes as a QEMU without -vcpu.
func fakeQEMU(t *testing.T, vcpu1, io0 int) string {
	t.Helper()
	script := `#!/bin/sh
if [ "$1" = -help ]; then
	printf 'QEMU emulator version 9.2.0\n-m [size=]megs\n'
	exit 0
fi
printf '%s\n' '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 9}, "package": ""}, "capabilities": []}}' >&3
while IFS= read -r line <&3; do
	id=${line##*'"id":'}
	id=${id%'}'}
	ret='{}'
	case $line in
	*'"query-cpus-fast"'*)
		ret='[{"cpu-index": 0, "thread-id": '$$', "qom-path": "/machine/unattached/device[0]", "target": "x86_64"},
			{"cpu-index": 1, "thread-id": VCPU1, "qom-path": "/machine/unattached/device[1]", "target": "x86_64"}]' ;;
	*'"query-iothreads"'*)
		ret='[{"id": "io0", "thread-id": IO0, "poll-max-ns": 32768, "poll-grow": 0, "poll-shrink": 0, "aio-max-batch": 0}]' ;;
	esac
	printf '{"return": %s, "id": %s}\n' "$(echo $ret)" "$id" >&3
	case $line in *'"quit"'*) exit 0 ;; esac
done
`
	script = strings.NewReplacer("VCPU1", strconv.Itoa(vcpu1), "IO0", strconv.Itoa(io0)).Replace(script)
	p := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestForeignThreadIDRefused: QEMU's monitor names, for a vCPU or an I/O
// thread, the thread of another process (here a sleep of the test's, as
// it could name another VM's real-time vCPU or a root daemon). The
// launcher refuses it with one line naming the thread and what it was
// named for, stops QEMU, and leaves that process's affinity and policy
// as they were.
func TestForeignThreadIDRefused(t *testing.T) {
	nstest.RequireRoot(t)
	requireCPUs(t, 0)
	for _, tt := range []struct {
		name string
		args []string
		what string
	}{
		{"vCPU", []string{"-smp", "2", "-vcpu", "1,affinity=0x1,prio=42"}, "vCPU 1"},
		{"I/O thread", []string{"-object", "iothread,id=io0"}, "I/O thread io0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			victim := exec.Command("sleep", "600")
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
			vpid := victim.Process.Pid
			before, err := sched.Read(vpid, vpid)
			if err != nil {
				t.Fatal(err)
			}
			qemu := fakeQEMU(t, vpid, vpid)
			args := []string{"-v", "--qmp-timeout", "1m"}
			if tt.name == "I/O thread" {
				args = append(args, "--iothread-cpus", "io0=0")
			}
			l := start(t, nil, nil, append(append(args, qemu, "-m", "64"), tt.args...)...)
			if code := l.wait(); code != 1 {
				t.Errorf("exit status %d, want 1\n%s", code, l.stderr.String())
			}
			stderr := l.stderr.String()
			var pid int
			_, started, _ := strings.Cut(stderr, "qemu-launch: started QEMU")
			if _, err := fmt.Sscanf(started, ", pid %d", &pid); err != nil {
				t.Fatalf("no pid in %q: %v", stderr, err)
			}
			want := fmt.Sprintf("qemu-launch: %s: QEMU's monitor names thread %d for it, which is not a thread of QEMU (pid %d): refusing to place it",
				tt.what, vpid, pid)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; last != want {
				t.Errorf("last line %q\nwant %q\nstderr:\n%s", last, want, stderr)
			}
			after, err := sched.Read(vpid, vpid)
			if err != nil {
				t.Fatal(err)
			}
			if !after.CPUs.Equal(before.CPUs) || after.Policy != before.Policy || after.Prio != before.Prio {
				t.Errorf("the other process was changed: %v, was %v", after, before)
			}
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("QEMU %d still runs", pid)
			}
		})
	}
}
