package agent

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	"driftless.dev/driftless/netproxy"
	"driftless.dev/driftless/services"
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

// serviceResync is how often the rules are compared with the kernel's
// when no record changes.
const serviceResync = 30 * time.Second

// servicesLoop owns the node's Service rules and DNS table: whenever the
// status branch's Service records change (published by the main loop),
// and every serviceResync, it programs them. It never waits for the
// other loops and they never wait for it: a slow or failing
// iptables-restore delays nothing else.
func (a *Agent) servicesLoop(ctx context.Context) {
	timer := time.NewTimer(serviceResync)
	defer timer.Stop()
	var last []services.Record
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.svcIn.Ready():
		case <-timer.C:
		}
		recs, ok := a.svcIn.Get()
		if !ok {
			timer.Reset(serviceResync)
			continue
		}
		if a.deps.DNS != nil && !slices.EqualFunc(recs, last, recordsEqual) {
			a.deps.DNS.Update(recs)
		}
		last = recs
		next := serviceResync
		if a.deps.Proxy != nil {
			cctx, cancel := context.WithTimeout(ctx, a.cfg.ContainerdTimeout.Duration)
			err := a.deps.Proxy.Sync(cctx, a.proxyConfig(), recs)
			cancel()
			if err != nil && ctx.Err() == nil {
				a.log.Warn("service rules not programmed", "err", err)
				next = 5 * time.Second
			}
			a.setServicesError(err)
		}
		timer.Reset(next)
	}
}

func recordsEqual(a, b services.Record) bool {
	return a.Service == b.Service && a.ClusterIP == b.ClusterIP && a.Type == b.Type && a.ExternalName == b.ExternalName &&
		slices.Equal(a.Ports, b.Ports) && slices.EqualFunc(a.Endpoints, b.Endpoints, func(x, y services.Endpoint) bool {
		return x.IP == y.IP && x.Node == y.Node && x.Replica == y.Replica && x.Hostname == y.Hostname &&
			x.Subdomain == y.Subdomain && x.Ready == y.Ready && slices.Equal(x.Ports, y.Ports)
	})
}

// publishServices hands the committed Service records to the services
// loop (sorted, so that an unchanged branch is an unchanged input).
func (a *Agent) publishServices() {
	if a.committed == nil {
		return
	}
	recs := make([]services.Record, 0, len(a.committed.Services))
	for _, r := range a.committed.Services {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Service.String() < recs[j].Service.String() })
	if prev, ok := a.svcIn.Get(); ok && slices.EqualFunc(prev, recs, recordsEqual) {
		return
	}
	a.svcIn.Put(recs)
}

// proxyConfig is what this node's rules depend on besides the records.
func (a *Agent) proxyConfig() netproxy.Config {
	sc, _ := a.cfg.ServiceConfig() // checked by Config.Validate
	c := netproxy.Config{NodeIP: a.nodeIP(), ClusterDNS: sc.ClusterDNS}
	if a.cfg.DNSListen != "off" && a.deps.DNS != nil {
		host, port, _ := net.SplitHostPort(a.cfg.DNSListen)
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.IsUnspecified() {
			ip = c.NodeIP
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
	return HostIP()
}

// HostIP is the host's first non-loopback IPv4 address (127.0.0.1 when
// it has none).
func HostIP() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok {
					return ip
				}
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}
