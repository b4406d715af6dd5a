package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/ifconf"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/qemuargs"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/rundir"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/sched"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/bridge"
	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// VM states in the list.
const (
	StateRunning  = "running"  // the launcher and its QEMU run
	StateStarting = "starting" // the launcher runs, QEMU not (yet, or any more)
	StateStale    = "stale"    // the launcher is gone; its records were left behind
)

// A ListedVM is one VM of qemu-launch --list: what the launcher's lock
// and records in the namespace's run directory say, checked against /proc.
type ListedVM struct {
	Name        string         `json:"name"`
	State       string         `json:"state"`
	LauncherPID int            `json:"launcher_pid"`
	PID         int            `json:"pid,omitempty"`            // QEMU's
	Uptime      float64        `json:"uptime_seconds,omitempty"` // since QEMU started
	NICs        []ListedNIC    `json:"nics"`
	Threads     []ListedThread `json:"threads,omitempty"`
}

// A ListedNIC is one tap of a VM: from its record, and from the kernel.
type ListedNIC struct {
	Tap      string `json:"tap"`
	Bridge   string `json:"bridge,omitempty"`    // what the tap is a port of, else the record's
	Port     string `json:"port"`                // linux-bridge, openvswitch, none, gone
	GuestMAC string `json:"guest_mac,omitempty"` // the guest NIC's, from the record
	HostMAC  string `json:"host_mac,omitempty"`  // the tap's
	Record   string `json:"record"`
}

// A ListedThread is one thread of QEMU and where it may run.
type ListedThread struct {
	TID      int    `json:"tid"`
	Name     string `json:"name"`
	CPUs     string `json:"cpus"`
	Policy   string `json:"policy"`
	Priority int    `json:"priority,omitempty"`
	shown    string // policy and priority as chrt says them
}

// List serves --list: the VMs of this network namespace, as a table or,
// with --json, as a JSON array.
func List(c *Config) (int, error) {
	vms, err := ListVMs(ifconf.Env{Getenv: c.Getenv}.RunDir(), &bridge.OVS{DB: c.Getenv(ifconf.EnvOVSDB)})
	if err != nil {
		return 1, err
	}
	if c.JSON {
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		if vms == nil {
			vms = []ListedVM{}
		}
		return 0, enc.Encode(vms)
	}
	return 0, printList(c.Stdout, vms)
}

// ListVMs reads the VMs of this network namespace from the run directory
// under base and /proc; ovs, when not nil, is asked which Open vSwitch
// bridge has a tap the kernel shows on no bridge (a userspace datapath's
// port). It changes nothing: a stale record stays for qemu-ifup to remove
// when the tap is next used.
func ListVMs(base string, ovs *bridge.OVS) ([]ListedVM, error) {
	id, err := rundir.NetnsID()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(base, rundir.NetnsDir(id))); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing ran here since the directory went
	}
	d, err := rundir.Open(base)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("%w (the launcher's records are root's: run qemu-launch --list as root)", err)
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	conn, err := link.Open()
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	defer conn.Close()
	host := bridge.Host{OVS: ovs}
	locks, err := d.VMLocks()
	if err != nil {
		return nil, err
	}
	recs, err := d.Records()
	if err != nil {
		return nil, err
	}
	byPid := map[int]*ListedVM{}
	var order []int
	vmOf := func(pid int) *ListedVM {
		if v, ok := byPid[pid]; ok {
			return v
		}
		v := &ListedVM{LauncherPID: pid, NICs: []ListedNIC{}}
		byPid[pid] = v
		order = append(order, pid)
		return v
	}
	for _, l := range locks {
		if l.Pid == 0 || !isLauncher(l.Pid) {
			continue // a lock left by a killed launcher holds nothing
		}
		vmOf(l.Pid).Name = l.Name
	}
	for _, r := range recs {
		if r.Pid == 0 {
			continue // written by hand: no VM's
		}
		v := vmOf(r.Pid)
		if !r.Live {
			v.State = StateStale
		}
		nic := ListedNIC{Tap: r.Ifname, Record: r.Path}
		if rec, err := ifconf.ParseRecord(r.Path, r.Data); err == nil {
			port := rec.Settings.Port()
			nic.Bridge, nic.GuestMAC = port.Bridge, port.GuestMAC
			if v.Name == "" {
				v.Name = port.VMName
			}
		}
		kernelPort(conn, host, &nic)
		v.NICs = append(v.NICs, nic)
	}
	vms := make([]ListedVM, 0, len(order))
	for _, pid := range order {
		v := byPid[pid]
		if v.Name == "" {
			v.Name = qemuargs.DefaultName
		}
		if v.State != StateStale {
			v.State = StateStarting
			if qpid := sched.FirstChild(pid); qpid > 0 {
				v.State, v.PID = StateRunning, qpid
				v.Uptime = uptime(qpid)
				v.Threads = threads(qpid)
			}
		}
		vms = append(vms, *v)
	}
	slices.SortStableFunc(vms, func(a, b ListedVM) int {
		if (a.State == StateStale) != (b.State == StateStale) {
			if a.State == StateStale {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return vms, nil
}

// isLauncher reports whether pid runs qemu-launch.
func isLauncher(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "qemu-launch"
}

// clockTicks is USER_HZ, the unit of /proc's start times: 100 on Linux.
const clockTicks = 100

// uptime is how long process pid has run, in seconds.
func uptime(pid int) float64 {
	start, err := rundir.StartTime(pid)
	if err != nil {
		return 0
	}
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	up, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return math.Round(max(0, up-float64(start)/clockTicks)*100) / 100
}

// threads reads where each of QEMU's threads may run and how it is
// scheduled.
func threads(pid int) []ListedThread {
	tids, err := sched.Threads(pid)
	if err != nil {
		return nil
	}
	slices.Sort(tids)
	var out []ListedThread
	for _, tid := range tids {
		th, err := sched.Read(pid, tid)
		if err != nil {
			continue // ended meanwhile
		}
		out = append(out, ListedThread{TID: tid, Name: th.Name, CPUs: th.CPUs.String(),
			Policy: sched.PolicyName(th.Policy), Priority: th.Prio, shown: sched.Describe(th.Policy, th.Prio)})
	}
	return out
}

// kernelPort fills in what the kernel and the bridges say of the tap: its
// MAC, and the bridge it is a port of, of whichever kind; for a bridge
// that cannot be named, the record's stays.
func kernelPort(c *link.Conn, host bridge.Host, nic *ListedNIC) {
	l, err := c.ByName(nic.Tap)
	if err != nil {
		nic.Port = "gone"
		return
	}
	nic.HostMAC = l.MAC.String()
	nic.Port = "none"
	b, err := host.PortOf(c, l, bridge.Hint{Anywhere: true, Listing: true})
	if err != nil || b == nil {
		return
	}
	nic.Port = b.Kind()
	if b.Name() != "" {
		nic.Bridge = b.Name()
	}
}

// printList writes --list for people: a line per VM, then its taps and
// QEMU's threads, indented, each group in columns.
func printList(w io.Writer, vms []ListedVM) error {
	if len(vms) == 0 {
		_, err := fmt.Fprintln(w, "no VMs in this network namespace")
		return err
	}
	running, stale := 0, 0
	for _, v := range vms {
		switch v.State {
		case StateRunning:
			running++
			fmt.Fprintf(w, "%s  running  pid %d  up %s  qemu-launch %d\n", qemuargs.Shown(v.Name), v.PID,
				time.Duration(v.Uptime)*time.Second, v.LauncherPID)
		case StateStale:
			stale++
			fmt.Fprintf(w, "%s  stale  qemu-launch %d is gone\n", qemuargs.Shown(v.Name), v.LauncherPID)
		default:
			fmt.Fprintf(w, "%s  %s  qemu-launch %d\n", qemuargs.Shown(v.Name), v.State, v.LauncherPID)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, n := range v.NICs {
			if v.State == StateStale {
				fmt.Fprintf(tw, "  tap %s\tbridge %s\tstale record %s\n", n.Tap, orDash(n.Bridge), n.Record)
				continue
			}
			fmt.Fprintf(tw, "  tap %s\tbridge %s\t%s\tguest MAC %s\thost MAC %s\n", n.Tap, orDash(n.Bridge), n.Port,
				orDash(n.GuestMAC), orDash(n.HostMAC))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, th := range v.Threads {
			fmt.Fprintf(tw, "  thread %d\t%s\tCPUs %s\t%s\n", th.TID, th.Name, th.CPUs, th.shown)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d running", running)
	if err == nil && stale > 0 {
		_, err = fmt.Fprintf(w, ", %d stale (records whose qemu-launch is gone; qemu-ifup removes each when its tap is next used)", stale)
	}
	if err == nil {
		_, err = fmt.Fprintln(w)
	}
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
