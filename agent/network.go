package agent

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	"driftless.dev/driftless/netproxy"
	"driftless.dev/driftless/podnet"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
)

// ServiceProxy programs the Services into this node's packet filter
// (netproxy.Proxy). Sync is level-triggered: it corrects whatever
// differs, whoever changed it.
type ServiceProxy interface {
	Sync(ctx context.Context, cfg netproxy.Config, recs []services.Record) error
}

// ServiceDNS answers the cluster's names from the newest records
// (clusterdns.Server).
type ServiceDNS interface {
	Update(recs []services.Record)
}

// PodSubnet is the node's own pod network, told its subnet of the
// cluster CIDR once the leader gave it (cni.Network).
type PodSubnet interface {
	SetPodCIDR(cidr string) error
}

// PodRoutes joins this node's pod subnet (self) to the other nodes'
// (podnet.Routes for host-gw, podnet.VXLAN).
type PodRoutes interface {
	Sync(ctx context.Context, self podnet.Route, peers []podnet.Route) error
}

// netInput is what the network loop programs: the committed Service
// records and nodes (their subnets and addresses). Never changed once
// published.
type netInput struct {
	recs  []services.Record
	nodes map[string]netNode
}

// netNode is what the network loop needs of a node.
type netNode struct {
	State            status.NodeState
	Address, PodCIDR string
}

// serviceResync is how often the rules are compared with the kernel's
// when no record changes.
const serviceResync = 30 * time.Second

// networkLoop owns the node's network beyond its replicas: its pod
// subnet and the routes to the other nodes' (with --cluster-cidr), the
// Service rules and the DNS table. Whenever the status branch's nodes or
// Service records change (published by the main loop), and every
// serviceResync, it programs them. It never waits for the other loops
// and they never wait for it: a slow or failing iptables-restore or
// route change delays nothing else.
func (a *Agent) networkLoop(ctx context.Context) {
	timer := time.NewTimer(serviceResync)
	defer timer.Stop()
	var last []services.Record
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.netIn.Ready():
		case <-timer.C:
		}
		in, ok := a.netIn.Get()
		if !ok {
			timer.Reset(serviceResync)
			continue
		}
		recs := in.recs
		next := serviceResync
		netErr := a.syncPodNetwork(ctx, in.nodes)
		if netErr != nil && ctx.Err() == nil {
			a.log.Warn("pod network not programmed", "err", netErr)
			next = 5 * time.Second
		}
		if a.deps.DNS != nil && !slices.EqualFunc(recs, last, services.Record.Equal) {
			a.deps.DNS.Update(recs)
		}
		last = recs
		var proxyErr error
		if a.deps.Proxy != nil {
			cctx, cancel := context.WithTimeout(ctx, a.cfg.ContainerdTimeout.Duration)
			proxyErr = a.deps.Proxy.Sync(cctx, a.proxyConfig(), recs)
			cancel()
			if proxyErr != nil && ctx.Err() == nil {
				a.log.Warn("service rules not programmed", "err", proxyErr)
				next = 5 * time.Second
			}
		}
		problem := errors.Join(netErr, proxyErr)
		a.setServicesError(problem)
		msg := ""
		if problem != nil {
			msg = problem.Error()
		}
		if prev := a.netProblem.Load(); (prev == nil && msg != "") || (prev != nil && *prev != msg) {
			a.netProblem.Store(&msg)
		}
		timer.Reset(next)
	}
}

// syncPodNetwork gives the node's bridge its subnet of the cluster CIDR
// and routes every other alive node's subnet through that node's
// address. A node that leaves (dead or removed) loses its route on
// every node; one that comes back keeps its subnet and gets it again.
func (a *Agent) syncPodNetwork(ctx context.Context, nodes map[string]netNode) error {
	pn, _ := a.cfg.PodNetworkConfig() // checked by Config.Validate
	if !pn.ClusterCIDR.IsValid() {
		return nil
	}
	var self podnet.Route
	if n := nodes[a.cfg.Node]; n.PodCIDR != "" {
		if a.deps.PodSubnet != nil {
			if err := a.deps.PodSubnet.SetPodCIDR(n.PodCIDR); err != nil {
				return err
			}
		}
		self.Dst, _ = netip.ParsePrefix(n.PodCIDR)
		self.Via = a.nodeIP()
	}
	if a.deps.PodRoutes == nil {
		return nil
	}
	var want []podnet.Route
	for name, n := range nodes {
		if name == a.cfg.Node || n.State != status.NodeAlive {
			continue
		}
		dst, err1 := netip.ParsePrefix(n.PodCIDR)
		via, err2 := netip.ParseAddr(n.Address)
		if err1 != nil || err2 != nil {
			continue
		}
		want = append(want, podnet.Route{Dst: dst, Via: via})
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.ContainerdTimeout.Duration)
	defer cancel()
	return a.deps.PodRoutes.Sync(cctx, self, want)
}

// publishNetwork hands the committed Service records and nodes to the
// network loop (sorted, so that an unchanged branch is an unchanged
// input) and returns them. a.committed must be set.
func (a *Agent) publishNetwork() netInput {
	in := a.netInputNow()
	if prev, ok := a.netIn.Get(); ok && slices.EqualFunc(prev.recs, in.recs, services.Record.Equal) && maps.Equal(prev.nodes, in.nodes) {
		return prev
	}
	a.netIn.Put(in)
	return in
}

// netInputNow is the network loop's input from the committed status.
func (a *Agent) netInputNow() netInput {
	recs := make([]services.Record, 0, len(a.committed.Services))
	for _, r := range a.committed.Services {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Service.String() < recs[j].Service.String() })
	nodes := make(map[string]netNode, len(a.committed.Nodes))
	for k, n := range a.committed.Nodes {
		nodes[k] = netNode{State: n.State, Address: n.Address, PodCIDR: n.PodCIDR}
	}
	return netInput{recs: recs, nodes: nodes}
}

// proxyConfig is what this node's rules depend on besides the records.
func (a *Agent) proxyConfig() netproxy.Config {
	sc, _ := a.cfg.ServiceConfig()    // checked by Config.Validate
	pn, _ := a.cfg.PodNetworkConfig() // checked by Config.Validate
	c := netproxy.Config{ClusterDNS: sc.ClusterDNS, ClusterCIDR: pn.ClusterCIDR}
	// The DNS rule is the same whether this agent's server bound its
	// port or not: agents sharing a network namespace render one set of
	// rules instead of taking turns rewriting it.
	if a.cfg.DNSListen != "off" {
		host, port, _ := net.SplitHostPort(a.cfg.DNSListen)
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.IsUnspecified() {
			ip = a.nodeIP()
		}
		if p, err := netip.ParseAddrPort(net.JoinHostPort(ip.String(), port)); err == nil {
			c.DNSTarget = p
		}
	}
	return c
}

// nodeIP is this node's address between nodes.
func (a *Agent) nodeIP() netip.Addr { return a.cfg.NodeAddr() }

// NodeAddr is this node's address between nodes: --node-ip, else the
// gossip address's IP, else the host's first non-loopback IPv4 address.
func (c *Config) NodeAddr() netip.Addr {
	if ip, err := netip.ParseAddr(c.NodeIP); err == nil {
		return ip
	}
	if host, _, err := net.SplitHostPort(c.Gossip); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			return ip
		}
	}
	ip, err := netip.ParseAddr(reconcile.HostIP())
	if err != nil {
		return netip.MustParseAddr("127.0.0.1")
	}
	return ip
}
