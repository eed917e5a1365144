// Package cni gives each replica an address of its own through CNI
// plugins: ADD when the replica's network namespace is made, DEL before it
// goes away. By default the agent's own network is used (a bridge with
// host-local addresses, NAT to the outside and portmap for hostPorts);
// a directory of the user's network configurations may replace it.
//
// The package runs the plugins as the CNI specification says (libcni);
// it never changes the host's network itself.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"driftless.dev/driftless/reconcile"
)

// Defaults of the agent's own network.
const (
	DefaultNetworkName = "driftless"
	DefaultBridge      = "driftless0"
	DefaultPodCIDR     = "10.88.0.0/16"
	// IfName is the replica's interface.
	IfName = "eth0"
)

// binDirCandidates are where plugins are looked for when no directory is
// given: the upstream location first, then Debian's.
var binDirCandidates = []string{"/opt/cni/bin", "/usr/lib/cni"}

// DefaultBinDir is the first of /opt/cni/bin and /usr/lib/cni that
// exists; /opt/cni/bin when neither does (the error then names it).
func DefaultBinDir() string {
	for _, d := range binDirCandidates {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return binDirCandidates[0]
}

// Config configures a Network. The zero value of a field means its
// default.
type Config struct {
	// BinDirs are searched for the plugins' executables, in order
	// (default: DefaultBinDir()).
	BinDirs []string
	// ConfDir, when set, holds the user's network configuration: the
	// first *.conflist, *.conf or *.json file in name order is used, read
	// again on every Setup. The fields below then do not apply.
	ConfDir string

	// Name is the agent's network's name; plugins name their state
	// (addresses, iptables chains) after it (default "driftless").
	Name string
	// Bridge is the host's bridge the replicas are plugged into
	// (default "driftless0"); it is created on first use and kept.
	Bridge string
	// PodCIDR is the subnet replicas get addresses from (default
	// 10.88.0.0/16). Agents sharing a host and bridge must use the same.
	PodCIDR string
	// StateDir holds the agent's network's address allocations
	// (host-local's, StateDir/networks/<name>). Default: host-local's
	// own, /var/lib/cni/networks, shared by every agent on the host, as
	// the bridge and subnet are.
	StateDir string
	// CacheDir holds the results of ADD, which DEL is given back
	// (default: StateDir, else /var/lib/cni). The agent keeps them in its
	// data dir.
	CacheDir string
	// NodeSubnet, when set, means PodCIDR is this node's subnet of a
	// cluster-wide pod network (given by the leader, SetPodCIDR): the
	// bridge does not masquerade (the agent masquerades traffic leaving
	// the cluster CIDR), and until the subnet is known every Setup fails.
	NodeSubnet bool
	// MTU of the replicas' interfaces (0: the plugin's default, 1500);
	// a tunnel between nodes needs room for its header (VXLAN: 50).
	MTU int
}

// Network runs CNI plugins for replicas. It is safe for concurrent use.
type Network struct {
	cni *libcni.CNIConfig

	mu   sync.Mutex
	cfg  Config
	list *libcni.NetworkConfigList // the agent's own network; nil until its subnet is known
}

var _ reconcile.Network = (*Network)(nil)

// New returns a Network. It checks the configuration, not the plugins: a
// missing plugin fails each Setup (the replica stays pending with the
// plugin's error) and never the agent.
func New(cfg Config) (*Network, error) {
	if len(cfg.BinDirs) == 0 {
		cfg.BinDirs = []string{DefaultBinDir()}
	}
	if cfg.Name == "" {
		cfg.Name = DefaultNetworkName
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.PodCIDR == "" {
		cfg.PodCIDR = DefaultPodCIDR
	}
	n := &Network{cfg: cfg}
	// Given here: libcni would make it on first use, racing.
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	if cfg.CacheDir == "" {
		cfg.CacheDir = cfg.StateDir
	}
	if cfg.CacheDir != "" {
		n.cni = libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, exec)
	} else {
		n.cni = libcni.NewCNIConfig(cfg.BinDirs, exec)
	}
	if cfg.ConfDir != "" {
		return n, nil
	}
	if len(cfg.Bridge) > 15 {
		return nil, fmt.Errorf("bridge name %q: longer than 15 characters", cfg.Bridge)
	}
	if cfg.NodeSubnet {
		n.cfg.PodCIDR = ""
		return n, nil
	}
	if err := n.SetPodCIDR(cfg.PodCIDR); err != nil {
		return nil, err
	}
	return n, nil
}

// SetPodCIDR sets the subnet the agent's own network gives addresses
// from (a node's subnet of the cluster CIDR, once the leader gave it).
// Replicas set up before keep their addresses.
func (n *Network) SetPodCIDR(cidr string) error {
	if _, err := ParsePodCIDR(cidr); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.list != nil && n.cfg.PodCIDR == cidr {
		return nil
	}
	cfg := n.cfg
	cfg.PodCIDR = cidr
	b, err := DefaultConfList(cfg)
	if err != nil {
		return err
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return fmt.Errorf("network configuration: %w", err)
	}
	n.cfg, n.list = cfg, list
	return nil
}

// ParsePodCIDR checks an IPv4 subnet with room for replicas (at most /30).
func ParsePodCIDR(s string) (*net.IPNet, error) {
	ip, sub, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", s, err)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("pod CIDR %q: not IPv4", s)
	}
	if ones, _ := sub.Mask.Size(); ones > 30 {
		return nil, fmt.Errorf("pod CIDR %q: too small (at most /30)", s)
	}
	return sub, nil
}

// DefaultConfList is the configuration of the agent's own network: a
// bridge that is the replicas' gateway and masquerades their traffic to
// the outside, host-local addresses from PodCIDR, and portmap for
// hostPorts. The namespace already has loopback up (the agent made it).
func DefaultConfList(cfg Config) ([]byte, error) {
	ipam := map[string]any{
		"type":   "host-local",
		"ranges": [][]map[string]string{{{"subnet": cfg.PodCIDR}}},
		"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
	}
	if cfg.StateDir != "" {
		ipam["dataDir"] = filepath.Join(cfg.StateDir, "networks")
	}
	list := map[string]any{
		"cniVersion": "0.4.0",
		"name":       cfg.Name,
		"plugins": []map[string]any{
			{
				"type":        "bridge",
				"bridge":      cfg.Bridge,
				"isGateway":   true,
				"ipMasq":      !cfg.NodeSubnet,
				"hairpinMode": true,
				"mtu":         cfg.MTU,
				"ipam":        ipam,
			},
			{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
				"snat":         true,
			},
		},
	}
	return json.MarshalIndent(list, "", "  ")
}

// confList is the network to use: the agent's own, or the first of the
// user's configuration files, read now so that an edit takes effect for
// the next replica.
func (n *Network) confList() (*libcni.NetworkConfigList, error) {
	// SetPodCIDR replaces cfg under mu while replicas are set up.
	n.mu.Lock()
	dir, list := n.cfg.ConfDir, n.list
	n.mu.Unlock()
	if dir == "" {
		if list == nil {
			return nil, errors.New("this node has no pod subnet yet (the leader gives one of --cluster-cidr)")
		}
		return list, nil
	}
	files, err := libcni.ConfFiles(dir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return nil, fmt.Errorf("network configuration in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no network configuration (*.conflist, *.conf, *.json) in %s", dir)
	}
	f := files[0]
	if filepath.Ext(f) == ".conflist" {
		l, err := libcni.ConfListFromFile(f)
		if err != nil {
			return nil, fmt.Errorf("network configuration %s: %w", f, err)
		}
		return l, nil
	}
	c, err := libcni.ConfFromFile(f)
	if err != nil {
		return nil, fmt.Errorf("network configuration %s: %w", f, err)
	}
	l, err := libcni.ConfListFromConf(c)
	if err != nil {
		return nil, fmt.Errorf("network configuration %s: %w", f, err)
	}
	return l, nil
}

func runtimeConf(a reconcile.Attachment) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: a.ID, NetNS: a.NSPath, IfName: IfName}
	// A namespace file that is no longer a namespace (after a reboot) or
	// is gone: DEL releases what the plugins hold on the host only.
	if a.NSPath != "" && !reconcile.IsNetNS(a.NSPath) {
		rt.NetNS = ""
	}
	pm := make([]map[string]any, 0, len(a.Ports))
	for _, p := range a.Ports {
		m := map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": p.Protocol}
		if p.HostIP != "" {
			m["hostIP"] = p.HostIP
		}
		pm = append(pm, m)
	}
	rt.CapabilityArgs = map[string]any{"portMappings": pm}
	return rt
}

// Setup runs ADD for the replica and returns its IPv4 address (else its
// first address). A failed ADD is undone with DEL, so that nothing it
// allocated leaks; the error is the plugin's.
func (n *Network) Setup(ctx context.Context, a reconcile.Attachment) (string, error) {
	if a.NSPath == "" || !reconcile.IsNetNS(a.NSPath) {
		return "", fmt.Errorf("cni add %s: %s is not a network namespace", a.ID, a.NSPath)
	}
	list, err := n.confList()
	if err != nil {
		return "", err
	}
	rt := runtimeConf(a)
	res, err := n.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		if derr := n.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return "", fmt.Errorf("cni add %s to network %s: %w", a.ID, list.Name, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return "", fmt.Errorf("cni add %s: result: %w", a.ID, err)
	}
	return resultIP(r), nil
}

// resultIP picks the address of the replica's side: an IPv4 address of an
// interface inside the namespace first.
func resultIP(r *current.Result) string {
	var best net.IP
	for _, ipc := range r.IPs {
		inside := ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(r.Interfaces) && r.Interfaces[*ipc.Interface].Sandbox != ""
		if ipc.Interface != nil && !inside {
			continue
		}
		ip := ipc.Address.IP
		if ip.To4() != nil {
			return ip.String()
		}
		if best == nil {
			best = ip
		}
	}
	if best == nil {
		return ""
	}
	return best.String()
}

// Teardown runs DEL for the replica: its address is released, its
// host ports unpublished, its host side of the link removed. Running it
// again, or for a replica never set up, is not an error.
func (n *Network) Teardown(ctx context.Context, a reconcile.Attachment) error {
	list, err := n.confList()
	if err != nil {
		return err
	}
	if err := n.cni.DelNetworkList(ctx, list, runtimeConf(a)); err != nil {
		return fmt.Errorf("cni del %s from network %s: %w", a.ID, list.Name, err)
	}
	return nil
}
