package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Open vSwitch is driven through ovs-vsctl, as libvirt and Proxmox do: the
// database protocol stays OVS's business.

var (
	// ErrOVSUnavailable is returned (wrapped) when Open vSwitch cannot be
	// asked: ovs-vsctl is not installed or its database does not answer.
	ErrOVSUnavailable = errors.New("Open vSwitch unavailable")
)

// DefaultOVSTimeout bounds each ovs-vsctl run, as libvirt's --timeout=5.
const DefaultOVSTimeout = 5 * time.Second

// An OVS runs ovs-vsctl against one Open vSwitch database. The zero value
// uses ovs-vsctl from PATH, its default database and DefaultOVSTimeout.
type OVS struct {
	// Vsctl is the ovs-vsctl program; "" means "ovs-vsctl" looked up in
	// PATH (of Env when set).
	Vsctl string
	// DB is the database in ovs-vsctl's --db syntax
	// ("unix:/run/openvswitch/db.sock"); "" leaves ovs-vsctl's default.
	DB string
	// Timeout bounds each run (--timeout, whole seconds, at least 1);
	// 0 means DefaultOVSTimeout.
	Timeout time.Duration
	// Env is ovs-vsctl's environment; nil inherits the process's.
	Env []string
	// NoWait returns once the database has the change, without waiting
	// for ovs-vswitchd to apply it (--no-wait): for undoing a change
	// while ovs-vswitchd may be the reason it failed.
	NoWait bool
}

// A VLANMode is an OVS port's vlan_mode.
type VLANMode string

// The modes; "" leaves OVS's default (access with a tag, trunk without).
const (
	VLANAccess         VLANMode = "access"
	VLANTrunk          VLANMode = "trunk"
	VLANNativeTagged   VLANMode = "native-tagged"
	VLANNativeUntagged VLANMode = "native-untagged"
	VLANDot1qTunnel    VLANMode = "dot1q-tunnel"
)

// An OVSPort is a port of an OVS bridge as ovs-vsctl configures it.
type OVSPort struct {
	// Bridge is the OVS bridge; Name the port (and its one interface).
	Bridge, Name string
	// Tag is the access VLAN (1 to MaxVLAN); 0 for none.
	Tag int
	// Trunks are the VLANs the port trunks; empty for all (OVS's
	// meaning of an empty trunks column).
	Trunks []int
	// VLANMode is the port's vlan_mode; "" for OVS's default.
	VLANMode VLANMode
	// MTU is the interface's mtu_request; 0 leaves it unset.
	MTU int
	// ExternalIDs are set on the interface (libvirt's vm-id,
	// attached-mac...); keys not given are left alone, but for those of
	// RemoveExternalIDs, which are removed.
	ExternalIDs       map[string]string
	RemoveExternalIDs []string
}

// validate checks the values before they reach ovs-vsctl's own syntax.
func (p OVSPort) validate() error {
	if p.Tag != 0 && !validVLAN(p.Tag) {
		return fmt.Errorf("VLAN tag %d is not from 1 to %d", p.Tag, MaxVLAN)
	}
	for _, v := range p.Trunks {
		if !validVLAN(v) {
			return fmt.Errorf("trunk VLAN %d is not from 1 to %d", v, MaxVLAN)
		}
	}
	switch p.VLANMode {
	case "", VLANAccess, VLANTrunk, VLANNativeTagged, VLANNativeUntagged, VLANDot1qTunnel:
	default:
		return fmt.Errorf("unknown vlan_mode %q", p.VLANMode)
	}
	for k, v := range p.ExternalIDs {
		if k == "" || strings.ContainsAny(k, "=,{}\"\\ \n") || strings.ContainsAny(v, "\"\\\n") {
			return fmt.Errorf("external-id %q=%q has characters ovs-vsctl would misread", k, v)
		}
	}
	for _, k := range p.RemoveExternalIDs {
		if _, set := p.ExternalIDs[k]; set || k == "" || strings.ContainsAny(k, "=,{}\"\\ \n") {
			return fmt.Errorf("external-id %q to remove is set or has characters ovs-vsctl would misread", k)
		}
	}
	return nil
}

// WithNoWait returns o, or with noWait a copy of o that does not wait for
// ovs-vswitchd.
func (o *OVS) WithNoWait(noWait bool) *OVS {
	if !noWait || o.NoWait {
		return o
	}
	c := *o
	c.NoWait = true
	return &c
}

func (o *OVS) timeoutSeconds() int {
	d := o.Timeout
	if d == 0 {
		d = DefaultOVSTimeout
	}
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// A VsctlError is a failed ovs-vsctl run: its exit status and the first
// line of what it printed on stderr.
type VsctlError struct {
	Status int
	Msg    string
}

func (e *VsctlError) Error() string {
	if e.Msg == "" {
		return "ovs-vsctl exited with status " + strconv.Itoa(e.Status)
	}
	return e.Msg
}

// run runs ovs-vsctl with args after the connection options and returns
// its stdout.
func (o *OVS) run(args ...string) (string, error) {
	prog := o.Vsctl
	if prog == "" {
		prog = "ovs-vsctl"
	}
	path, err := lookPath(prog, o.Env)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (Debian package openvswitch-switch)", ErrOVSUnavailable, prog)
	}
	a := []string{"--timeout=" + strconv.Itoa(o.timeoutSeconds())}
	if o.DB != "" {
		a = append(a, "--db="+o.DB)
	}
	if o.NoWait {
		a = append(a, "--no-wait")
	}
	cmd := exec.Command(path, append(a, args...)...)
	cmd.Env = o.Env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), nil
	case errors.As(err, &ee):
		msg, _, _ := strings.Cut(strings.TrimSpace(errb.String()), "\n")
		msg = strings.TrimPrefix(msg, "ovs-vsctl: ")
		verr := &VsctlError{Status: ee.ExitCode(), Msg: msg}
		// --timeout ends ovs-vsctl with SIGALRM: the database did not
		// answer, or ovs-vswitchd did not apply the change (which the
		// database may hold all the same).
		if !ee.Exited() {
			verr.Msg = fmt.Sprintf("no answer within %ds (database %s, or ovs-vswitchd, not running?)",
				o.timeoutSeconds(), o.dbName())
			return "", fmt.Errorf("%w: %w", ErrOVSUnavailable, verr)
		}
		// ovs-vsctl exits 1 both for "no such port" and for a dead
		// database; only its message tells them apart.
		if strings.Contains(msg, "database connection failed") {
			return "", fmt.Errorf("%w: %w", ErrOVSUnavailable, verr)
		}
		return "", verr
	}
	return "", fmt.Errorf("run %s: %w", path, err)
}

func (o *OVS) dbName() string {
	if o.DB == "" {
		return "default"
	}
	return o.DB
}

// lookPath finds prog in the PATH of env (or the process's, for nil env).
func lookPath(prog string, env []string) (string, error) {
	if strings.Contains(prog, "/") || env == nil {
		return exec.LookPath(prog)
	}
	for _, kv := range env {
		if dirs, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, d := range strings.Split(dirs, ":") {
				if d == "" {
					continue
				}
				if p, err := exec.LookPath(d + "/" + prog); err == nil {
					return p, nil
				}
			}
		}
	}
	return "", exec.ErrNotFound
}

// IsOVSBridge reports whether name is a bridge of this Open vSwitch.
//
// Equivalent to: ovs-vsctl br-exists $name
func (o *OVS) IsOVSBridge(name string) (bool, error) {
	_, err := o.run("br-exists", name)
	var verr *VsctlError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &verr) && verr.Status == 2 && !errors.Is(err, ErrOVSUnavailable):
		return false, nil
	}
	return false, fmt.Errorf("ask Open vSwitch about bridge %s: %w", name, err)
}

// PortBridge returns the OVS bridge that has port as an interface, or ""
// if it is on none. A kernel datapath's ports all show "ovs-system" as
// their master; only OVS knows which bridge a port belongs to.
//
// Equivalent to: ovs-vsctl iface-to-br $port
func (o *OVS) PortBridge(port string) (string, error) {
	out, err := o.run("iface-to-br", port)
	var verr *VsctlError
	switch {
	case err == nil:
		return strings.TrimSpace(out), nil
	case errors.As(err, &verr) && !errors.Is(err, ErrOVSUnavailable) &&
		strings.HasPrefix(verr.Msg, "no interface named"):
		return "", nil
	}
	return "", fmt.Errorf("ask Open vSwitch which bridge has %s: %w", port, err)
}

// AddPort makes p.Name a port of p.Bridge with p's settings, in one
// transaction, and waits until ovs-vswitchd has applied it. A port that
// already exists on p.Bridge is reconfigured to p (VLAN settings not
// given are cleared); one on another bridge is an error unless move is
// set, when it moves in the same transaction.
//
// Equivalent to: ovs-vsctl --timeout=5 -- --may-exist add-port $br $port
// -- set Port $port tag= trunks= vlan_mode= -- set Interface $port
// mtu_request= external-ids:K=V -- remove Interface $port external-ids K
func (o *OVS) AddPort(p OVSPort, move bool) error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("add %s to %s: %w", p.Name, p.Bridge, err)
	}
	_, err := o.run(addPortArgs(p, move)...)
	if err != nil {
		return fmt.Errorf("add %s to %s: %w", p.Name, p.Bridge, err)
	}
	return nil
}

// Applied checks that ovs-vswitchd opened the port's interface: an
// interface it could not open (a tap in another network namespace, a
// name that is no device) keeps ofport -1 and says why in its error
// column.
//
// Equivalent to: ovs-vsctl get Interface $port ofport error
func (o *OVS) Applied(port string) error {
	out, err := o.run("--", "get", "Interface", port, "ofport", "--", "get", "Interface", port, "error")
	if err != nil {
		return fmt.Errorf("read interface %s: %w", port, err)
	}
	v, err := getValues(out, 2)
	if err != nil {
		return fmt.Errorf("read interface %s: %w", port, err)
	}
	msg, err := ovsdbString(v[1])
	if err != nil {
		return fmt.Errorf("read interface %s: error: %w", port, err)
	}
	if msg != "" {
		return fmt.Errorf("Open vSwitch did not open %s: %s", port, msg)
	}
	ofport, err := ovsdbInt(v[0])
	if err != nil {
		return fmt.Errorf("read interface %s: ofport: %w", port, err)
	}
	if ofport <= 0 {
		return fmt.Errorf("Open vSwitch did not open %s (ofport %d)", port, ofport)
	}
	return nil
}

// addPortArgs is the transaction AddPort runs.
func addPortArgs(p OVSPort, move bool) []string {
	var a []string
	if move {
		a = append(a, "--", "--if-exists", "del-port", p.Name)
	}
	a = append(a, "--", "--may-exist", "add-port", p.Bridge, p.Name)
	// "set" after add-port, since --may-exist add-port ignores column
	// settings for a port that exists: a re-run must still converge.
	set := []string{"--", "set", "Port", p.Name}
	if p.Tag != 0 {
		set = append(set, "tag="+strconv.Itoa(p.Tag))
	} else {
		set = append(set, "tag=[]")
	}
	set = append(set, "trunks="+intList(p.Trunks))
	if p.VLANMode != "" {
		set = append(set, "vlan_mode="+string(p.VLANMode))
	} else {
		set = append(set, "vlan_mode=[]")
	}
	a = append(a, set...)
	iset := []string{"--", "set", "Interface", p.Name}
	if p.MTU != 0 {
		iset = append(iset, "mtu_request="+strconv.Itoa(p.MTU))
	} else {
		iset = append(iset, "mtu_request=[]")
	}
	keys := make([]string, 0, len(p.ExternalIDs))
	for k := range p.ExternalIDs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		iset = append(iset, "external-ids:"+k+"=\""+p.ExternalIDs[k]+"\"")
	}
	a = append(a, iset...)
	for _, k := range p.RemoveExternalIDs {
		a = append(a, "--", "remove", "Interface", p.Name, "external-ids", k)
	}
	return a
}

func intList(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// DelPort removes port from whichever OVS bridge has it; a port that is on
// none is not an error.
//
// Equivalent to: ovs-vsctl --timeout=5 -- --if-exists del-port $port
func (o *OVS) DelPort(port string) error {
	if _, err := o.run("--", "--if-exists", "del-port", port); err != nil {
		return fmt.Errorf("remove %s from Open vSwitch: %w", port, err)
	}
	return nil
}

// PortOn reads back the port called name, known to be on the bridge br:
// its VLAN settings, the interface's mtu_request and the external-ids of
// the keys given (others are someone else's).
//
// Equivalent to: ovs-vsctl get Port $name tag trunks vlan_mode; ovs-vsctl
// get Interface $name mtu_request external-ids:$key
func (o *OVS) PortOn(br, name string, externalIDs ...string) (*OVSPort, error) {
	// One value per line, in OVSDB's syntax, parsed without a JSON
	// decoder: the helpers link only what they use.
	args := []string{"--", "get", "Port", name, "tag", "trunks", "vlan_mode", "--", "get", "Interface", name, "mtu_request"}
	for _, k := range externalIDs {
		args = append(args, "--", "--if-exists", "get", "Interface", name, "external-ids:"+k)
	}
	out, err := o.run(args...)
	if err != nil {
		return nil, fmt.Errorf("read port %s of %s: %w", name, br, err)
	}
	p, err := parsePort(out, externalIDs)
	if err != nil {
		return nil, fmt.Errorf("read port %s of %s: %w", name, br, err)
	}
	p.Bridge, p.Name = br, name
	return p, nil
}

// parsePort parses Port's output: tag, trunks, vlan_mode, mtu_request,
// then one line per external-id key ("" for a key not set).
func parsePort(out string, keys []string) (*OVSPort, error) {
	v, err := getValues(out, 4+len(keys))
	if err != nil {
		return nil, err
	}
	p := &OVSPort{}
	if p.Tag, err = ovsdbInt(v[0]); err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	if p.Trunks, err = ovsdbInts(v[1]); err != nil {
		return nil, fmt.Errorf("trunks: %w", err)
	}
	slices.Sort(p.Trunks)
	mode, err := ovsdbString(v[2])
	if err != nil {
		return nil, fmt.Errorf("vlan_mode: %w", err)
	}
	p.VLANMode = VLANMode(mode)
	if p.MTU, err = ovsdbInt(v[3]); err != nil {
		return nil, fmt.Errorf("mtu_request: %w", err)
	}
	for i, k := range keys {
		if v[4+i] == "" {
			continue
		}
		val, err := ovsdbString(v[4+i])
		if err != nil {
			return nil, fmt.Errorf("external-ids:%s: %w", k, err)
		}
		if p.ExternalIDs == nil {
			p.ExternalIDs = map[string]string{}
		}
		p.ExternalIDs[k] = val
	}
	return p, nil
}

// getValues splits the output of n "get" commands, one line each.
func getValues(out string, n int) ([]string, error) {
	v := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(v) != n {
		return nil, fmt.Errorf("unexpected ovs-vsctl output %q", out)
	}
	return v, nil
}

// ovsdbInts parses an integer column or set: "10", "[]", "[10, 20]".
func ovsdbInts(s string) ([]int, error) {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return nil, fmt.Errorf("unexpected value %q", s)
		}
		s = inner
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("unexpected value %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// ovsdbInt parses an optional integer column: 0 for an empty set.
func ovsdbInt(s string) (int, error) {
	vs, err := ovsdbInts(s)
	switch {
	case err != nil:
		return 0, err
	case len(vs) > 1:
		return 0, fmt.Errorf("more than one value: %q", s)
	case len(vs) == 1:
		return vs[0], nil
	}
	return 0, nil
}

// ovsdbString parses an optional string column: a bare word, a quoted
// string with C escapes, or "[]" (empty).
func ovsdbString(s string) (string, error) {
	switch {
	case s == "[]":
		return "", nil
	case strings.HasPrefix(s, `"`):
		u, err := strconv.Unquote(s)
		if err != nil {
			return "", fmt.Errorf("unexpected value %s", s)
		}
		return u, nil
	case strings.ContainsAny(s, " ,[]{}=\""):
		return "", fmt.Errorf("unexpected value %q", s)
	}
	return s, nil
}
