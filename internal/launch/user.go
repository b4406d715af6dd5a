package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/tap"
)

// QEMU run as a user (User= in the VM file, --user): the launcher keeps
// what needs privileges (CPU placement, vCPU pinning and SCHED_FIFO, the
// memory-lock limit, the taps and their helpers, cleanup) and QEMU runs as
// that user with no capability at all.
//
// The taps are opened by the launcher and handed to QEMU as descriptors
// (-netdev tap,fd=N), as libvirt does, rather than made by the bridge
// helper: the taps keep the names the launcher gives them and its records,
// so qemu-ifup applies the same settings (per-NIC bridge, MTU, MAC, the
// config's rules) as for a QEMU run as root; no ACL file or file
// capability is needed; and qemu-ifdown runs with privileges at cleanup,
// which a down-script run by an unprivileged QEMU could not.

// tapFd is the first tap's descriptor in QEMU: right after the QMP socket.
const tapFd = qmpFd + 1

// An account is the user QEMU runs as.
type account struct {
	Name     string
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Home     string
}

// lookupAccount finds a user by name or number. Root is refused: running
// QEMU as root is what happens without User=.
func lookupAccount(s string) (*account, error) {
	u, err := user.Lookup(s)
	if err != nil {
		if _, nerr := strconv.Atoi(s); nerr != nil {
			return nil, fmt.Errorf("user %s: %w", s, err)
		}
		if u, err = user.LookupId(s); err != nil {
			return nil, fmt.Errorf("user %s: %w", s, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %s: %w", s, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %s is root: leave User= out to run QEMU as root", s)
	}
	a := &account{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of user %s: %w", s, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("groups of user %s: %q is not a gid", s, g)
		}
		if uint32(n) != a.GID {
			a.Groups = append(a.Groups, uint32(n))
		}
	}
	return a, nil
}

func (a *account) String() string {
	return fmt.Sprintf("%s (uid %d, gid %d)", a.Name, a.UID, a.GID)
}

// credential makes QEMU that user. Changing from uid 0 to another clears
// every capability (the kernel does so on setuid, without SECBIT_KEEP_CAPS),
// and QEMU is no setuid or capability-carrying binary to gain any back.
func (a *account) credential() *syscall.Credential {
	return &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: append([]uint32{}, a.Groups...)}
}

// userPath is the PATH of a QEMU run as a user: systemd's default for
// services, rather than whatever root's was.
const userPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// displayEnv are what a window needs of the launcher's environment; a QEMU
// run as a user gets them only when it opens one (qemuargs.UsesDisplay).
var displayEnv = []string{"DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR"}

// userEnviron is the whole environment of a QEMU run as the user: PATH,
// the user's HOME, USER and LOGNAME, and of the launcher's environment
// only the terminal's type and the locale (TERM, LANG, LANGUAGE, LC_*),
// plus the display's variables when display is set. Nothing else of
// root's (tokens, sockets, library paths) reaches it.
func (a *account) userEnviron(env []string, display bool) []string {
	out := []string{"PATH=" + userPath, "HOME=" + a.Home, "USER=" + a.Name, "LOGNAME=" + a.Name}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "TERM", k == "LANG", k == "LANGUAGE", strings.HasPrefix(k, "LC_"),
			display && slices.Contains(displayEnv, k):
			out = append(out, kv)
		}
	}
	return out
}

// raiseMemLock lifts the launcher's memory-lock limit, which QEMU inherits:
// as root QEMU needs no limit (CAP_IPC_LOCK), as a user it does. Only a
// process with CAP_SYS_RESOURCE may raise a hard limit (libvirt too raises
// the limit rather than give QEMU CAP_IPC_LOCK); without it, and with a
// finite hard limit, QEMU's mlockall would fail, so the launcher says so
// before QEMU starts.
func raiseMemLock(user *account) error {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf)
	if err == nil {
		return nil
	}
	var cur unix.Rlimit
	if gerr := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur); gerr == nil && errors.Is(err, unix.EPERM) {
		return fmt.Errorf("QEMU as user %s locks its memory (-realtime mlock=on or -overcommit mem-lock=on), "+
			"but the launcher cannot raise the memory-lock limit above its hard limit of %d kB without CAP_SYS_RESOURCE; "+
			"turn memory locking off or give qemu-launch CAP_SYS_RESOURCE", user.Name, cur.Max/1024)
	}
	return fmt.Errorf("raising the memory-lock limit for QEMU: %w", err)
}

// openTaps creates each tap the launcher wired, runs qemu-ifup on it as
// QEMU would have, and returns the taps' files in the order of the taps,
// to be passed to QEMU. On failure the taps made so far are closed, which
// removes them (and their ports).
func (r *run) openTaps() ([]*os.File, error) {
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for _, t := range r.Taps {
		var devs []*tap.Device
		var err error
		// The taps are the user's: no other user may attach a queue.
		owner := int(r.User.UID)
		if t.Queues > 1 {
			devs, err = tap.CreateQueues(t.Ifname, t.Queues, t.VnetHdr, owner)
		} else {
			var d *tap.Device
			d, err = tap.Create(t.Ifname, t.VnetHdr, owner)
			devs = []*tap.Device{d}
		}
		if err != nil {
			return fail(fmt.Errorf("netdev %s: %w", t.ID, err))
		}
		// In the order of the descriptors qemuargs gave QEMU.
		for _, d := range devs {
			files = append(files, d.File)
		}
		if err := r.ifup(t); err != nil {
			return fail(err)
		}
	}
	return files, nil
}

// ifup runs the up-script on a tap the launcher opened. Its lines go to
// the launcher's stderr, as QEMU would have shown them.
func (r *run) ifup(t qemuargs.Tap) error {
	cmd := exec.Command(r.cfg.IfUp, t.Ifname)
	cmd.Env = r.environ()
	cmd.Stdout, cmd.Stderr = r.cfg.Stderr, r.cfg.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netdev %s: %s %s: %w", t.ID, r.cfg.IfUp, t.Ifname, err)
	}
	return nil
}

// closeTaps closes the launcher's copies of the taps, after cleanup ran
// qemu-ifdown: the kernel then removes them, also when QEMU's user made
// them persistent.
func (r *run) closeTaps() {
	for _, f := range r.tapFiles {
		tap.Close(f)
	}
	r.tapFiles = nil
}

// userActions are the dry run's lines for User=.
func (p *Plan) userActions() []string {
	if p.User == nil {
		return nil
	}
	a := []string{fmt.Sprintf("start QEMU as user %s, with no capabilities", p.User)}
	if p.LocksMemory {
		a = append(a, "raise the memory-lock limit to unlimited for QEMU, which locks its memory")
	}
	for _, t := range p.Taps {
		if t.Queues > 1 {
			a = append(a, fmt.Sprintf("create tap %s with %d queues, run %s on it, and pass them to QEMU as fds %d-%d (netdev %s)",
				t.Ifname, t.Queues, p.cfg.IfUp, t.FD, t.FD+t.Queues-1, t.ID))
			continue
		}
		a = append(a, fmt.Sprintf("create tap %s, run %s on it, and pass it to QEMU as fd %d (netdev %s)",
			t.Ifname, p.cfg.IfUp, t.FD, t.ID))
	}
	return a
}

// asUser prepares cmd to run QEMU as the plan's user: the memory-lock
// limit, the taps (fd 4 on, after QMP's 3) and the credentials.
func (r *run) asUser(cmd *exec.Cmd) error {
	if r.LocksMemory {
		if err := raiseMemLock(r.User); err != nil {
			return err
		}
	}
	files, err := r.openTaps()
	if err != nil {
		return err
	}
	r.tapFiles = files
	cmd.ExtraFiles = append(cmd.ExtraFiles, files...)
	cmd.SysProcAttr.Credential = r.User.credential()
	cmd.Env = r.User.userEnviron(r.cfg.Environ(), qemuargs.UsesDisplay(r.Args))
	r.logf("QEMU runs as user %s", r.User)
	return nil
}
