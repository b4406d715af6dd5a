package rundir

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func open(t *testing.T, base string) *Dir {
	t.Helper()
	d, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestOpenCreatesPrivateDirs(t *testing.T) {
	base := filepath.Join(t.TempDir(), "a", "run")
	d := open(t, base)
	id, err := NetnsID()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(base, NetnsDir(id)); d.Path != want {
		t.Errorf("Path = %s, want %s", d.Path, want)
	}
	for _, p := range []string{base, d.Path} {
		if m := mode(t, p); m != fs.ModeDir|0o700 {
			t.Errorf("%s: mode %v, want drwx------", p, m)
		}
	}
}

func TestOpenTightensOldMode(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o777)
	open(t, base)
	if m := mode(t, base); m != fs.ModeDir|0o700 {
		t.Errorf("mode %v, want drwx------", m)
	}
}

func TestReadRefusesPlantedFiles(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "run"))
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("[Interface]\nBridge=evil\n"), 0o600)
	must(t, os.Symlink(secret, filepath.Join(d.Path, "link0.conf")))
	must(t, unix.Mkfifo(filepath.Join(d.Path, "fifo0.conf"), 0o600))
	must(t, os.Mkdir(filepath.Join(d.Path, "dir0.conf"), 0o700))
	big := make([]byte, MaxRecord+1)
	must(t, os.WriteFile(filepath.Join(d.Path, "big0.conf"), big, 0o600))
	for _, tt := range []struct{ ifname, want string }{
		{"link0", "a symlink"},
		{"fifo0", "not a regular file but a FIFO"},
		{"dir0", "not a regular file but a directory"},
		{"big0", "larger than 65536 bytes"},
	} {
		done := make(chan error, 1)
		go func() {
			_, _, err := d.ReadRecord(tt.ifname)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadRecord(%s) = %v, want %q", tt.ifname, err, tt.want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("ReadRecord(%s) hangs", tt.ifname)
		}
	}
}

func TestReadFileBounded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c")
	must(t, os.WriteFile(p, []byte("12345"), 0o600))
	if _, err := ReadFile(p, 4); err == nil || !errors.As(err, new(*TooBigError)) {
		t.Errorf("ReadFile over the limit = %v, want a TooBigError", err)
	}
	if b, err := ReadFile(p, 5); err != nil || string(b) != "12345" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none"), 5); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file = %v, want ErrNotExist", err)
	}
	fifo := filepath.Join(dir, "fifo")
	must(t, unix.Mkfifo(fifo, 0o600))
	if _, err := ReadFile(fifo, 5); err == nil || !strings.Contains(err.Error(), "a FIFO") {
		t.Errorf("ReadFile of a FIFO = %v", err)
	}
}

func TestRecordOwner(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "run"))
	body := "[Interface]\nBridge=br0\n"
	must(t, d.WriteRecord("tap0", []byte(body)))
	data, stale, err := d.ReadRecord("tap0")
	if err != nil || stale != nil || !strings.HasPrefix(string(data), body) {
		t.Fatalf("ReadRecord = %q, %v, %v", data, stale, err)
	}
	if mine, err := d.RecordIsMine("tap0"); !mine || err != nil {
		t.Errorf("RecordIsMine = %v, %v, want true", mine, err)
	}
	if m := mode(t, d.RecordPath("tap0")); m != 0o600 {
		t.Errorf("record mode %v, want 0600", m)
	}

	// A record signed by a launcher that is gone is stale.
	cmd := exec.Command("true")
	must(t, cmd.Run())
	pid := cmd.ProcessState.Pid()
	gone := body + ownerPrefix + strconv.Itoa(pid) + " start=1\n"
	must(t, os.WriteFile(d.RecordPath("tap1"), []byte(gone), 0o600))
	data, stale, err = d.ReadRecord("tap1")
	if data != nil || err != nil || stale == nil || stale.Pid != pid {
		t.Fatalf("ReadRecord of a stale record = %q, %v, %v", data, stale, err)
	}
	if _, err := os.Stat(d.RecordPath("tap1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale record not removed: %v", err)
	}
	// This process with the wrong start time: a reused pid.
	reused := body + ownerPrefix + strconv.Itoa(os.Getpid()) + " start=1\n"
	must(t, os.WriteFile(d.RecordPath("tap2"), []byte(reused), 0o600))
	if _, stale, _ := d.ReadRecord("tap2"); stale == nil {
		t.Error("record of a reused pid not stale")
	}
	if mine, _ := d.RecordIsMine("tap3"); mine {
		t.Error("RecordIsMine of a missing record")
	}
	// A hand-written record has no owner and stays.
	must(t, os.WriteFile(d.RecordPath("tap3"), []byte(body), 0o600))
	if data, stale, err := d.ReadRecord("tap3"); string(data) != body || stale != nil || err != nil {
		t.Errorf("hand-written record = %q, %v, %v", data, stale, err)
	}
	if mine, _ := d.RecordIsMine("tap3"); mine {
		t.Error("RecordIsMine of a hand-written record")
	}
}

func TestLock(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "run"))
	name := TapLock("tap0")
	l, err := d.Lock(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description conflicts, as another process would.
	d2 := open(t, filepath.Dir(d.Path))
	_, err = d2.Lock(name, 20*time.Millisecond)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Pid != os.Getpid() {
		t.Fatalf("second Lock = %v, want busy with pid %d", err, os.Getpid())
	}
	l.Release()
	if _, err := os.Stat(filepath.Join(d.Path, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file left after release: %v", err)
	}
	l2, err := d2.Lock(name, 0)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	l2.Release()

	// A waiter gets the lock when the holder releases it.
	l, err = d.Lock(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := d2.Lock(name, time.Minute)
		if err == nil {
			l.Release()
		}
		got <- err
	}()
	time.Sleep(10 * time.Millisecond)
	l.Release()
	if err := <-got; err != nil {
		t.Errorf("waiter: %v", err)
	}
}

// A lock file a killed holder left (never removed) holds a longer pid: the
// new holder's replaces it whole.
func TestLockOverLeftFile(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "run"))
	name := TapLock("tap0")
	must(t, os.WriteFile(filepath.Join(d.Path, name), []byte("123456789012\n"), 0o600))
	l, err := d.Lock(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	got, err := os.ReadFile(filepath.Join(d.Path, name))
	if want := strconv.Itoa(os.Getpid()) + "\n"; err != nil || string(got) != want {
		t.Errorf("lock file = %q, %v; want %q", got, err, want)
	}
}

func TestVMLock(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"web1", "vm.web1.lock"},
		{"a b/c", "vm.a%20b%2Fc.lock"},
		{".x", "vm.%2Ex.lock"},
		{"..", "vm.%2E..lock"},
	} {
		if got := VMLock(tt.in); got != tt.want {
			t.Errorf("VMLock(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err := validFileName(VMLock(tt.in)); err != nil {
			t.Error(err)
		}
	}
	long := VMLock(strings.Repeat("x", 300))
	if len(long) > 255 || long == VMLock(strings.Repeat("x", 301)) {
		t.Errorf("long names: %q", long)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRunDirInodeReuse: a namespace's inode is reused once it is gone, so
// a directory named after it may be another namespace's leftover, with
// records nobody should trust. One that holds another namespace's cookie,
// or none and nothing in use, is cleared, never used.
func TestRunDirInodeReuse(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cookie string // "" none
	}{
		{"another namespace's cookie", "1\n"},
		{"no cookie, nothing in use", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "run")
			id, err := NetnsID()
			if err != nil {
				t.Fatal(err)
			}
			stale := filepath.Join(base, NetnsDir(id))
			must(t, os.MkdirAll(stale, 0o700))
			if tt.cookie != "" {
				must(t, os.WriteFile(filepath.Join(stale, "netns-cookie"), []byte(tt.cookie), 0o600))
			}
			// Written by hand, so never stale by itself.
			must(t, os.WriteFile(filepath.Join(stale, "tap0.conf"), []byte("[Interface]\nBridge=evil\n"), 0o600))
			must(t, os.WriteFile(filepath.Join(stale, "vm.old.lock"), []byte("1\n"), 0o600))
			d := open(t, base)
			data, _, err := d.ReadRecord("tap0")
			if data != nil || err != nil {
				t.Errorf("ReadRecord in a stale directory = %q, %v; want none", data, err)
			}
			if _, err := os.Stat(filepath.Join(d.Path, "vm.old.lock")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stale lock file kept: %v", err)
			}
		})
	}
}

// A directory of an older version (no cookie) in which a lock is held is
// this namespace's, in use: it is kept, with its records, and gets the
// cookie.
func TestRunDirAdoptsOldInUse(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	id, err := NetnsID()
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(base, NetnsDir(id))
	must(t, os.MkdirAll(old, 0o700))
	must(t, os.WriteFile(filepath.Join(old, "tap0.conf"), []byte("[Interface]\nBridge=br0\n"), 0o600))
	lf, err := os.OpenFile(filepath.Join(old, VMLock("vm")), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	must(t, unix.Flock(int(lf.Fd()), unix.LOCK_EX))
	d := open(t, base)
	if data, _, err := d.ReadRecord("tap0"); data == nil || err != nil {
		t.Errorf("ReadRecord = %q, %v; want the record kept", data, err)
	}
	got, err := os.ReadFile(filepath.Join(old, CookieFile))
	if want := strconv.FormatUint(NetnsCookie(), 10) + "\n"; err != nil || string(got) != want {
		t.Errorf("cookie %q, %v; want %q", got, err, want)
	}
}

// The directory goes with the last thing in use in it, and not before.
func TestRunDirRemovedWhenDone(t *testing.T) {
	gone := func() *exec.Cmd { c := exec.Command("true"); c.Run(); return c }()
	staleRecord := "[Interface]\n" + ownerPrefix + strconv.Itoa(gone.ProcessState.Pid()) + " start=1\n"
	for _, tt := range []struct {
		name    string
		setup   func(t *testing.T, d *Dir)
		removed bool
	}{
		{"empty", func(*testing.T, *Dir) {}, true},
		{"lock released, record removed", func(t *testing.T, d *Dir) {
			l, err := d.Lock(VMLock("vm"), 0)
			must(t, err)
			must(t, d.WriteRecord("tap0", []byte("[Interface]\n")))
			must(t, d.MarkUp("tap0"))
			must(t, d.RemoveRecord("tap0"))
			l.Release()
		}, true},
		{"leftovers of killed processes", func(t *testing.T, d *Dir) {
			must(t, os.WriteFile(filepath.Join(d.Path, VMLock("vm")), []byte("1\n"), 0o600))
			must(t, os.WriteFile(filepath.Join(d.Path, "tap0.conf"), []byte(staleRecord), 0o600))
			must(t, os.WriteFile(filepath.Join(d.Path, "tap0.up"), nil, 0o600))
			must(t, os.WriteFile(filepath.Join(d.Path, ".tap1.conf.1.0"), nil, 0o600))
			l, err := d.Lock(TapLock("gone0"), 0)
			must(t, err)
			l.Leave()
		}, true},
		{"a lock held", func(t *testing.T, d *Dir) {
			l, err := open(t, filepath.Dir(d.Path)).Lock(VMLock("vm"), 0)
			must(t, err)
			t.Cleanup(l.Release)
		}, false},
		{"a live launcher's record", func(t *testing.T, d *Dir) {
			must(t, d.WriteRecord("tap0", []byte("[Interface]\n")))
		}, false},
		{"a record written by hand", func(t *testing.T, d *Dir) {
			must(t, os.WriteFile(filepath.Join(d.Path, "tap0.conf"), []byte("[Interface]\n"), 0o600))
		}, false},
		{"a lock left for a tap that exists", func(t *testing.T, d *Dir) {
			l, err := d.Lock(TapLock("lo"), 0)
			must(t, err)
			l.Leave()
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(filepath.Join(t.TempDir(), "run"))
			must(t, err)
			tt.setup(t, d)
			must(t, d.Close())
			_, err = os.Stat(d.Path)
			if removed := errors.Is(err, fs.ErrNotExist); removed != tt.removed {
				t.Errorf("removed %v (%v), want %v", removed, err, tt.removed)
			}
		})
	}
}

// A helper that opened the directory before its last user removed it
// opens it again to lock: its lock is in the directory at the path.
func TestLockAfterRemoval(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	d1 := open(t, base)
	d2, err := Open(base)
	must(t, err)
	must(t, d2.Close()) // removes it
	if _, err := os.Stat(d1.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("directory not removed: %v", err)
	}
	l, err := d1.Lock(TapLock("tap0"), 0)
	must(t, err)
	defer l.Release()
	var held, now unix.Stat_t
	must(t, unix.Fstat(int(l.f.Fd()), &held))
	must(t, unix.Stat(filepath.Join(d1.Path, TapLock("tap0")), &now))
	if held.Ino != now.Ino {
		t.Error("the lock is not on the file at the directory's path")
	}
}

// Helpers taking and releasing one lock while others open and close the
// directory, which removes it whenever it is idle: the lock stays
// exclusive and nobody fails.
func TestLockWhileRemoving(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	var inside atomic.Int32
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 150 {
				d, err := Open(base)
				if err != nil {
					t.Error(err)
					return
				}
				if g%3 == 0 { // only opens and closes
					d.Close()
					continue
				}
				l, err := d.Lock(TapLock("tap0"), time.Minute)
				if err != nil {
					t.Error(err)
					d.Close()
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				inside.Add(-1)
				if g%2 == 0 {
					l.Leave()
				} else {
					l.Release()
				}
				d.Close()
			}
		}()
	}
	wg.Wait()
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left in %s: %s", base, e.Name())
		}
	}
}

// qemu-launch --list's view: records by tap name, sorted, with their
// launcher, and the VM locks held.
func TestListRecordsAndVMLocks(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "run"))
	must(t, d.WriteRecord("tap1", []byte("bridge=br1")))
	must(t, d.WriteRecord("tap0", []byte("bridge=br0")))
	l, err := d.Lock(VMLock("web 1"), 0)
	must(t, err)
	defer l.Release()
	recs, err := d.Records()
	must(t, err)
	if len(recs) != 2 || recs[0].Ifname != "tap0" || recs[1].Ifname != "tap1" ||
		recs[0].Pid != os.Getpid() || !recs[0].Live || !strings.HasPrefix(string(recs[0].Data), "bridge=br0\n") {
		t.Errorf("records: %+v", recs)
	}
	vms, err := d.VMLocks()
	must(t, err)
	if len(vms) != 1 || vms[0].Name != "web 1" || vms[0].Pid != os.Getpid() {
		t.Errorf("VM locks: %+v", vms)
	}
}

// A helper that opened the directory before its last user removed it,
// and closes it without locking anything, leaves alone the directory made
// at the path since: moving that one away would lose its holders' locks,
// and the next helper would take the same lock in a new directory.
func TestCloseAfterRemovalKeepsNewDir(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	d1, err := Open(base)
	must(t, err)
	d2, err := Open(base)
	must(t, err)
	must(t, d2.Close()) // removes it
	d3 := open(t, base) // makes it again
	l, err := d3.Lock(TapLock("tap0"), 0)
	must(t, err)
	defer l.Release()
	must(t, d1.Close())
	d4 := open(t, base)
	l4, err := d4.Lock(TapLock("tap0"), 0)
	if err == nil {
		l4.Release()
		t.Fatal("tap0's lock taken twice")
	}
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Pid != os.Getpid() {
		t.Fatalf("lock: %v, want held by pid %d", err, os.Getpid())
	}
}
