package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/pkg/link"
)

// OVN: a host is a chassis of OVN when its Open vSwitch's Open_vSwitch
// table names the southbound database in external_ids:ovn-remote.
// ovn-controller then binds the logical switch port that an interface
// names in external_ids:iface-id to this chassis, tunnels its traffic to
// the other chassis, and marks the interface external_ids:ovn-installed
// once the port's flows are in place. The helpers set the identity, wait
// for the mark and, when it does not come, ask the southbound database
// why.

// The bytes a tunnel adds to a guest's IP packet on an IPv4 underlay: the
// outer IPv4 (20) and UDP (8) headers, the tunnel header (8, and OVN's
// 8-byte Geneve option) and the guest's Ethernet header (14).
const (
	GeneveOverhead = 58
	VXLANOverhead  = 50
	// IPv6Overhead is what an IPv6 underlay adds: its header is 40 bytes.
	IPv6Overhead = 20
)

// A Chassis is this host as OVN sees it, from the Open_vSwitch table's
// external_ids.
type Chassis struct {
	// SystemID is the chassis' name (system-id).
	SystemID string
	// Remote is the southbound database (ovn-remote), "tcp:IP:6642".
	Remote string
	// Encaps are the tunnel types (ovn-encap-type): geneve, vxlan.
	Encaps []string
	// EncapIPs are the tunnel endpoints (ovn-encap-ip).
	EncapIPs []net.IP
	// Bridge is the integration bridge (ovn-bridge), whose ports
	// ovn-controller binds: br-int unless set.
	Bridge string
}

// DefaultIntegrationBridge is OVN's integration bridge unless
// external_ids:ovn-bridge names another.
const DefaultIntegrationBridge = "br-int"

// Chassis reads OVN's settings of this Open vSwitch; it returns nil, nil
// when the host is not a chassis (no ovn-remote).
//
// Equivalent to: ovs-vsctl get Open_vSwitch . external_ids:system-id
// external_ids:ovn-remote external_ids:ovn-encap-type external_ids:ovn-encap-ip
// external_ids:ovn-bridge
func (o *OVS) Chassis() (*Chassis, error) {
	keys := []string{"system-id", "ovn-remote", "ovn-encap-type", "ovn-encap-ip", "ovn-bridge"}
	var args []string
	for _, k := range keys {
		args = append(args, "--", "--if-exists", "get", "Open_vSwitch", ".", "external_ids:"+k)
	}
	out, err := o.run(args...)
	if err != nil {
		return nil, fmt.Errorf("read OVN's settings of Open vSwitch: %w", err)
	}
	v, err := getValues(out, len(keys))
	if err != nil {
		return nil, fmt.Errorf("read OVN's settings of Open vSwitch: %w", err)
	}
	for i := range v {
		if v[i] == "" {
			continue
		}
		if v[i], err = ovsdbString(v[i]); err != nil {
			return nil, fmt.Errorf("read OVN's settings of Open vSwitch: external_ids:%s: %w", keys[i], err)
		}
	}
	if v[1] == "" {
		return nil, nil
	}
	c := &Chassis{SystemID: v[0], Remote: v[1], Encaps: splitList(v[2]), Bridge: v[4]}
	if c.Bridge == "" {
		c.Bridge = DefaultIntegrationBridge
	}
	for _, s := range splitList(v[3]) {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("Open vSwitch's external_ids:ovn-encap-ip %q is not an IP address", v[3])
		}
		c.EncapIPs = append(c.EncapIPs, ip)
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Overhead is the most bytes a tunnel of the chassis adds to a guest's
// IP packet: Geneve's or VXLAN's, and IPv6Overhead more when an endpoint
// is an IPv6 address. OVN tunnels with Geneve when no type is given.
func (c *Chassis) Overhead() (int, error) {
	n := 0
	encaps := c.Encaps
	if len(encaps) == 0 {
		encaps = []string{"geneve"}
	}
	for _, e := range encaps {
		switch e {
		case "geneve":
			n = max(n, GeneveOverhead)
		case "vxlan":
			n = max(n, VXLANOverhead)
		default:
			return 0, fmt.Errorf("unknown OVN tunnel type %q (external_ids:ovn-encap-type): give the port's MTU", e)
		}
	}
	for _, ip := range c.EncapIPs {
		if ip.To4() == nil {
			return n + IPv6Overhead, nil
		}
	}
	return n, nil
}

// An OverlayMTU is the largest MTU a guest's port can have for its
// packets to cross the chassis' tunnels whole, and how it was found.
type OverlayMTU struct {
	MTU int
	// Encap is the interface holding the tunnel endpoint, EncapMTU its
	// MTU, Overhead what the tunnel takes of it.
	Encap              string
	EncapMTU, Overhead int
}

func (m OverlayMTU) String() string {
	return fmt.Sprintf("%d (%s's MTU %d less %d for the tunnel)", m.MTU, m.Encap, m.EncapMTU, m.Overhead)
}

// OverlayMTU works out the MTU that fits the chassis' tunnels: the MTU of
// the interface holding the tunnel endpoint (the smallest, for several)
// less the tunnel's overhead. OVN sends encapsulated packets as they are:
// one larger than the underlay's MTU is dropped without an ICMP error.
func (c *Chassis) OverlayMTU(conn *link.Conn) (OverlayMTU, error) {
	over, err := c.Overhead()
	if err != nil {
		return OverlayMTU{}, err
	}
	if len(c.EncapIPs) == 0 {
		return OverlayMTU{}, errors.New("Open vSwitch has no external_ids:ovn-encap-ip, the tunnel endpoint: give the port's MTU")
	}
	var m OverlayMTU
	for _, ip := range c.EncapIPs {
		l, err := conn.ByAddr(ip)
		if err != nil {
			return OverlayMTU{}, fmt.Errorf("OVN tunnel endpoint %s (external_ids:ovn-encap-ip): %w", ip, err)
		}
		if m.Encap == "" || l.MTU < m.EncapMTU {
			m.Encap, m.EncapMTU = l.Name, l.MTU
		}
	}
	m.Overhead = over
	m.MTU = m.EncapMTU - over
	if m.MTU < 68 {
		return OverlayMTU{}, fmt.Errorf("%s's MTU %d leaves no room for the tunnel's %d bytes", m.Encap, m.EncapMTU, over)
	}
	return m, nil
}

// DefaultOVNWait is how long a logical port may take to be installed: a
// chassis at ease installs one in well under a second; a busy
// ovn-controller recomputing a large southbound database takes longer.
const DefaultOVNWait = 20 * time.Second

// chassisRead is the answer of OVS.Chassis, kept.
type chassisRead struct {
	c   *Chassis
	err error
}

// ovn reads, once per bridge found, whether this host is an OVN chassis.
func (b *OVSBridge) ovn() (*Chassis, error) {
	if b.chassis == nil {
		c, err := b.sw.Chassis()
		b.chassis = &chassisRead{c, err}
	}
	return b.chassis.c, b.chassis.err
}

// logicalPort completes the steps that join an OVN logical port: on a
// chassis, the port must be on its integration bridge, and a last step
// waits until ovn-controller has installed it; elsewhere there is nothing
// to wait for, which the first step warns of.
func (b *OVSBridge) logicalPort(steps []Step, s PortSettings) ([]Step, error) {
	ch, err := b.ovn()
	if err != nil {
		return nil, err
	}
	if ch == nil {
		if len(steps) > 0 {
			steps[0].Warning = "this host is not an OVN chassis (Open vSwitch has no external_ids:ovn-remote): logical port " +
				s.LogicalPort + " is not waited for"
		}
		return steps, nil
	}
	if ch.Bridge != b.name {
		return nil, &SettingError{Setting: SettingLogicalPort, Value: s.LogicalPort,
			Reason: "needs OVN's integration bridge " + ch.Bridge + "; " + b.name + " is another Open vSwitch bridge"}
	}
	if len(steps) == 0 {
		return nil, nil
	}
	wait := s.OVNWait
	if wait <= 0 {
		wait = DefaultOVNWait
	}
	return append(steps, Step{
		Action: ActWait,
		Desc:   fmt.Sprintf("wait for OVN to install logical port %s (ovn-installed, at most %s)", s.LogicalPort, wait),
		Apply: func(_ *link.Conn, port *link.Link) error {
			err := b.sw.WaitInstalled(port.Name, wait)
			if errors.Is(err, ErrNotInstalled) {
				return fmt.Errorf("%s: no ovn-installed within %s: %s", port.Name, wait, b.sw.WhyNotInstalled(ch, s.LogicalPort))
			}
			return err
		},
	}), nil
}

// ErrNotInstalled is returned (wrapped) by WaitInstalled when the time ran
// out.
var ErrNotInstalled = errors.New("not installed")

// WaitInstalled waits until ovn-controller has marked the interface of
// port ovn-installed, at most timeout (whole seconds, at least one).
//
// Equivalent to: ovs-vsctl --timeout=$timeout wait-until Interface $port
// external_ids:ovn-installed=true
func (o *OVS) WaitInstalled(port string, timeout time.Duration) error {
	w := *o
	w.Timeout, w.NoWait = timeout, false
	_, err := w.run("wait-until", "Interface", port, `external_ids:ovn-installed="true"`)
	var verr *VsctlError
	if errors.As(err, &verr) && errors.Is(err, ErrOVSUnavailable) && verr.Status <= 0 {
		// --timeout ran out.
		return fmt.Errorf("OVN port %s: %w within %ds", port, ErrNotInstalled, w.timeoutSeconds())
	}
	if err != nil {
		return fmt.Errorf("wait for OVN to install %s: %w", port, err)
	}
	return nil
}

// Env names of OVN's run directory, where ovn-controller keeps its pid
// file, and its default (Debian's ovn-ctl).
const (
	EnvOVNRunDir     = "OVN_RUNDIR"
	DefaultOVNRunDir = "/var/run/ovn"
)

// WhyNotInstalled says, in one phrase, why OVN has not installed the
// logical port lsp on this chassis, as the southbound database and the
// host tell: the port is not in the northbound database, it is bound to
// another chassis, no ovn-controller runs here, or it is bound here and
// still not installed.
//
// Equivalent to: ovn-sbctl --db=$ovn_remote find Port_Binding
// logical_port=$lsp; cat $OVN_RUNDIR/ovn-controller.pid
func (o *OVS) WhyNotInstalled(c *Chassis, lsp string) string {
	bound, found, sberr := o.boundTo(c, lsp)
	controller := o.controllerRunning()
	switch {
	case sberr == nil && !found:
		return fmt.Sprintf("logical port %s is not in the northbound database (the southbound database %s has no Port_Binding for it)", lsp, c.Remote)
	case sberr == nil && bound != "" && bound != c.SystemID:
		return fmt.Sprintf("logical port %s is bound to chassis %s, not to this host (system-id %s)", lsp, bound, c.SystemID)
	case controller != nil:
		return fmt.Sprintf("no ovn-controller runs on this host (%v)", controller)
	case sberr != nil:
		return fmt.Sprintf("OVN did not install logical port %s, and its southbound database did not say why: %v", lsp, sberr)
	case bound == "":
		return fmt.Sprintf("logical port %s is bound to no chassis: ovn-controller has not claimed it (see its log)", lsp)
	}
	return fmt.Sprintf("logical port %s is bound to this chassis (%s), but ovn-controller has not installed its flows (see its log)", lsp, c.SystemID)
}

// boundTo asks the southbound database which chassis has lsp: its name,
// "" for none; found is false when the database has no such port.
func (o *OVS) boundTo(c *Chassis, lsp string) (chassis string, found bool, err error) {
	out, err := o.sbctl(c, "--bare", "--columns=_uuid,chassis", "find", "Port_Binding", "logical_port="+strconv.Quote(lsp))
	if err != nil {
		return "", false, err
	}
	f := strings.Fields(out)
	switch len(f) {
	case 0:
		return "", false, nil
	case 1:
		return "", true, nil
	}
	name, err := o.sbctl(c, "get", "Chassis", f[1], "name")
	if err != nil {
		return "", true, err
	}
	name = strings.TrimSpace(name)
	if s, err := ovsdbString(name); err == nil {
		name = s
	}
	return name, true, nil
}

// sbctl runs ovn-sbctl against the chassis' southbound database.
func (o *OVS) sbctl(c *Chassis, args ...string) (string, error) {
	path, err := lookPath("ovn-sbctl", o.Env)
	if err != nil {
		return "", errors.New("ovn-sbctl not found (Debian package ovn-common)")
	}
	a := append([]string{"--timeout=" + strconv.Itoa(o.timeoutSeconds()), "--db=" + c.Remote}, args...)
	cmd := exec.Command(path, a...)
	cmd.Env = o.Env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return "", fmt.Errorf("%s did not answer within %ds", c.Remote, o.timeoutSeconds())
		}
		msg, _, _ := strings.Cut(strings.TrimSpace(errb.String()), "\n")
		return "", fmt.Errorf("ovn-sbctl --db=%s: %v: %s", c.Remote, err, strings.TrimPrefix(msg, "ovn-sbctl: "))
	}
	return out.String(), nil
}

// controllerRunning checks ovn-controller's pid file in OVN's run
// directory: nil when it names a running process.
func (o *OVS) controllerRunning() error {
	dir := getenv(o.Env, EnvOVNRunDir)
	if dir == "" {
		dir = DefaultOVNRunDir
	}
	pidfile := filepath.Join(dir, "ovn-controller.pid")
	b, err := os.ReadFile(pidfile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no %s", pidfile)
		}
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s holds no process id", pidfile)
	}
	// Signal 0 checks that the process exists; EPERM means it does.
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%s names process %d, which is gone", pidfile, pid)
	}
	return nil
}

// getenv reads key from env, or from the process's environment for nil.
func getenv(env []string, key string) string {
	if env == nil {
		return os.Getenv(key)
	}
	v := ""
	for _, kv := range env {
		if val, ok := strings.CutPrefix(kv, key+"="); ok {
			v = val
		}
	}
	return v
}
