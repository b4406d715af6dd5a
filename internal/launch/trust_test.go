package launch

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/nstest"
)

// TestUntrustedVMFileRefused: a launcher run as root reads a VM file, and
// runs the QEMU binary and the scripts it names, only if root owns them
// and every directory on their paths and no one else may write them. A
// refusal is one line naming the file, its owner and mode, and the fix.
func TestUntrustedVMFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		nstest.Skip(t, "test needs root: the launcher checks VM files only as root")
	}
	const rule = "root trusts a file only if root owns it and every directory on its path and no one else may write them"
	nobody := nstest.Nobody(t)
	tests := []struct {
		name string
		vm   string                             // the VM file, DIR for its directory
		fix  func(t *testing.T, dir, vm string) // what makes it untrusted
		want string                             // "" accepted, else the error, DIR for the directory
	}{
		{name: "root's 0644 file and programs", vm: "[VM]\nQEMU=DIR/qemu\n[NIC]\nScript=DIR/up\nDownScript=DIR/down\n"},
		{name: "QEMU's 'no script'", vm: "[VM]\nQEMU=DIR/qemu\n[NIC]\nScript=no\nDownScript=no\n"},
		{name: "a user's VM file", vm: "[VM]\nQEMU=DIR/qemu\n",
			fix:  func(t *testing.T, dir, vm string) { chown(t, vm, nobody.Uid) },
			want: "VM file DIR/vm.conf: not trusted: owned by uid 65534 (nobody) with mode 0644; " + rule + " (fix: chown root:root DIR/vm.conf)"},
		{name: "a world-writable VM file", vm: "[VM]\nQEMU=DIR/qemu\n",
			fix:  func(t *testing.T, dir, vm string) { chmod(t, vm, 0o666) },
			want: "VM file DIR/vm.conf: not trusted: owned by root with mode 0666; " + rule + " (fix: chmod go-w DIR/vm.conf)"},
		{name: "a VM file under /tmp", vm: "[VM]\nQEMU=DIR/qemu\n",
			fix: func(t *testing.T, dir, vm string) {
				tmp := filepath.Join(t.TempDir(), "vm.conf")
				if err := os.Rename(vm, tmp); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(tmp, vm); err != nil {
					t.Fatal(err)
				}
			},
			want: "VM file DIR/vm.conf: not trusted: its directory " + os.TempDir() + " is owned by root with mode 1777; " + rule + " (fix: move it to a directory that only root may write)"},
		{name: "Script= in a user-writable directory", vm: "[VM]\nQEMU=DIR/qemu\n[NIC]\nID=vm0\nScript=DIR/bin/up\n",
			fix:  func(t *testing.T, dir, vm string) { chmod(t, filepath.Join(dir, "bin"), 0o777) },
			want: "VM file DIR/vm.conf: [NIC] vm0 Script=DIR/bin/up: not trusted: its directory DIR/bin is owned by root with mode 0777; " + rule + " (fix: chmod go-w DIR/bin)"},
		{name: "a user's DownScript=", vm: "[VM]\nQEMU=DIR/qemu\n[NIC]\nID=vm0\nDownScript=DIR/down\n",
			fix:  func(t *testing.T, dir, vm string) { chown(t, filepath.Join(dir, "down"), nobody.Uid) },
			want: "VM file DIR/vm.conf: [NIC] vm0 DownScript=DIR/down: not trusted: owned by uid 65534 (nobody) with mode 0755; " + rule + " (fix: chown root:root DIR/down)"},
		{name: "a group-writable QEMU=", vm: "[VM]\nQEMU=DIR/qemu\n",
			fix:  func(t *testing.T, dir, vm string) { chmod(t, filepath.Join(dir, "qemu"), 0o775) },
			want: "VM file DIR/vm.conf: QEMU binary DIR/qemu: not trusted: owned by root with mode 0775; " + rule + " (fix: chmod go-w DIR/qemu)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := nstest.TrustedDir(t)
			if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"qemu", "up", "down", "bin/up"} {
				if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			vm := filepath.Join(dir, "vm.conf")
			if err := os.WriteFile(vm, []byte(strings.ReplaceAll(tt.vm, "DIR", dir)), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.fix != nil {
				tt.fix(t, dir, vm)
			}
			c, _ := testConfig()
			_, err := Parse([]string{"--config", vm}, c)
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), dir, "DIR")
			}
			if got != tt.want {
				t.Errorf("Parse(--config) = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func chown(t *testing.T, p string, uid uint32) {
	t.Helper()
	if err := os.Chown(p, int(uid), -1); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, p string, mode uint32) {
	t.Helper()
	if err := syscall.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestVMFileAppearingAfterCheckRefused: a VM file whose trust check failed
// because it was missing is not read, even if whoever may write its
// directory puts one there right after the check.
func TestVMFileAppearingAfterCheckRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		nstest.Skip(t, "test needs root: the launcher checks VM files only as root")
	}
	dir := nstest.TrustedDir(t)
	chmod(t, dir, 0o777)
	src, vm := filepath.Join(dir, "src.conf"), filepath.Join(dir, "vm.conf")
	if err := os.WriteFile(src, []byte("[VM]\nQEMU=/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the directory's other writer: vm.conf comes and goes
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Link(src, vm)
			os.Remove(vm)
		}
	}()
	defer func() { close(stop); <-done }()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		if _, err := loadVM(vm); err == nil {
			t.Fatal("loadVM read a VM file in a world-writable directory")
		}
	}
}
