// Package netproxy programs Services into a node's packet filter the way
// kube-proxy's iptables mode does: a virtual address and port are
// DNAT-ed to one of the Service's endpoints, chosen at random (or by
// client address with ClientIP affinity), from pods, from the host and,
// for NodePorts, from outside. The whole set of driftless chains is
// rendered as text and applied by one iptables-restore per change:
// never one command per rule, and chains left by an earlier agent are
// taken over or removed, never duplicated.
package netproxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"driftless.dev/driftless/services"
)

// Chains of the nat and filter tables that driftless owns. Per-Service
// and per-endpoint chains start with SvcPrefix and SepPrefix.
const (
	ChainServices    = "DRIFTLESS-SERVICES"
	ChainNodePorts   = "DRIFTLESS-NODEPORTS"
	ChainPostrouting = "DRIFTLESS-POSTROUTING"
	ChainMarkMasq    = "DRIFTLESS-MARK-MASQ"
	ChainReject      = "DRIFTLESS-REJECT"
	SvcPrefix        = "DL-SVC-"
	SepPrefix        = "DL-SEP-"
	// masqMark marks packets to be masqueraded on their way out.
	masqMark = "0x4000/0x4000"
)

// Config is what a node's rules depend on besides the Services
// (NodePorts are served on every local address: addrtype LOCAL).
type Config struct {
	// ClusterDNS is the nameserver address pods are given; DNSTarget
	// where this node serves it (invalid: no DNS rule).
	ClusterDNS netip.Addr
	DNSTarget  netip.AddrPort
	// MasqueradeAll masquerades all Service traffic (needed when the
	// bridge does not pass its traffic through iptables).
	MasqueradeAll bool
	// ClusterCIDR, when valid, is the pod network across the nodes:
	// traffic from it to elsewhere is masqueraded (within it, never).
	ClusterCIDR netip.Prefix
}

// Tables is the iptables-restore input of the nat and filter tables.
type Tables struct {
	NAT, Filter string
}

// Render returns the rules for recs. The same input gives the same text
// (records sorted, chain names hashed from what they serve).
func Render(cfg Config, recs []services.Record) Tables {
	recs = append([]services.Record(nil), recs...)
	sort.Slice(recs, func(i, j int) bool { return recs[i].Service.String() < recs[j].Service.String() })

	var chains []string
	var nat, filter strings.Builder
	rule := func(b *strings.Builder, format string, args ...any) {
		fmt.Fprintf(b, format, args...)
		b.WriteByte('\n')
	}
	chains = append(chains, ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq)
	var body strings.Builder
	rule(&body, "-A %s -m mark --mark %s -j MASQUERADE", ChainPostrouting, masqMark)
	if cfg.ClusterCIDR.IsValid() {
		rule(&body, "-A %s -s %s ! -d %s -m comment --comment \"pods to outside the cluster\" -j MASQUERADE", ChainPostrouting, cfg.ClusterCIDR, cfg.ClusterCIDR)
	}
	rule(&body, "-A %s -j MARK --set-xmark %s", ChainMarkMasq, masqMark)
	if cfg.DNSTarget.IsValid() && cfg.ClusterDNS.IsValid() {
		for _, proto := range []string{"udp", "tcp"} {
			rule(&body, "-A %s -d %s/32 -p %s -m %s --dport 53 -m comment --comment \"cluster DNS\" -j DNAT --to-destination %s",
				ChainServices, cfg.ClusterDNS, proto, proto, cfg.DNSTarget)
			// The node's server answers what came through the cluster
			// DNS address only: it forwards to the host's resolvers, and
			// must not be an open resolver on the node's addresses.
			rule(&filter, "-A %s -m addrtype --dst-type LOCAL -p %s -m %s --dport %d -m conntrack ! --ctstate DNAT -m comment --comment \"cluster DNS only through %s\" -j REJECT --reject-with icmp-port-unreachable",
				ChainReject, proto, proto, cfg.DNSTarget.Port(), cfg.ClusterDNS)
		}
	}
	var nodePorts strings.Builder
	for _, r := range recs {
		ip, err := netip.ParseAddr(r.ClusterIP)
		hasIP := err == nil
		for pi, p := range r.Ports {
			proto := strings.ToLower(p.Protocol)
			name := r.Service.Namespace + "/" + r.Service.Name
			if p.Name != "" {
				name += ":" + p.Name
			}
			if !hasIP && p.NodePort == 0 {
				continue // headless or ExternalName: DNS only
			}
			eps := ready(r, pi)
			if len(eps) == 0 {
				// No endpoint: refuse the connection, as Kubernetes does.
				if hasIP {
					rule(&filter, "-A %s -d %s/32 -p %s -m %s --dport %d -m comment --comment \"%s has no endpoints\" -j REJECT --reject-with icmp-port-unreachable",
						ChainReject, ip, proto, proto, p.Port, name)
				}
				if p.NodePort != 0 {
					rule(&filter, "-A %s -m addrtype --dst-type LOCAL -p %s -m %s --dport %d -m comment --comment \"%s has no endpoints\" -j REJECT --reject-with icmp-port-unreachable",
						ChainReject, proto, proto, p.NodePort, name)
				}
				continue
			}
			svc := SvcPrefix + hash(name, p.Protocol)
			chains = append(chains, svc)
			if hasIP {
				masq := ""
				if cfg.MasqueradeAll {
					masq = fmt.Sprintf("-A %s -d %s/32 -p %s -m %s --dport %d -j %s\n", ChainServices, ip, proto, proto, p.Port, ChainMarkMasq)
				}
				body.WriteString(masq)
				rule(&body, "-A %s -d %s/32 -p %s -m %s --dport %d -m comment --comment \"%s\" -j %s",
					ChainServices, ip, proto, proto, p.Port, name, svc)
			}
			if p.NodePort != 0 {
				// From outside, replies must come back through this node.
				rule(&nodePorts, "-A %s -p %s -m %s --dport %d -m comment --comment \"%s\" -j %s", ChainNodePorts, proto, proto, p.NodePort, name, ChainMarkMasq)
				rule(&nodePorts, "-A %s -p %s -m %s --dport %d -m comment --comment \"%s\" -j %s", ChainNodePorts, proto, proto, p.NodePort, name, svc)
			}
			var seps []string
			for _, e := range eps {
				sep := SepPrefix + hash(name, p.Protocol, e.ip)
				seps = append(seps, sep)
				chains = append(chains, sep)
			}
			if r.SessionAffinity == "ClientIP" {
				for _, sep := range seps {
					rule(&body, "-A %s -m recent --name %s --rcheck --seconds %d --reap -j %s", svc, sep, r.AffinitySeconds, sep)
				}
			}
			for i, sep := range seps {
				if n := len(seps) - i; n > 1 {
					rule(&body, "-A %s -m statistic --mode random --probability %s -j %s", svc, probability(n), sep)
				} else {
					rule(&body, "-A %s -j %s", svc, sep)
				}
			}
			for i, e := range eps {
				sep := seps[i]
				// Hairpin: a replica reaching itself through its Service.
				rule(&body, "-A %s -s %s/32 -j %s", sep, e.ip, ChainMarkMasq)
				aff := ""
				if r.SessionAffinity == "ClientIP" {
					aff = fmt.Sprintf(" -m recent --name %s --set", sep)
				}
				rule(&body, "-A %s -p %s -m %s%s -j DNAT --to-destination %s:%d", sep, proto, proto, aff, e.ip, e.port)
			}
		}
	}
	// NodePorts last: only for packets to one of this node's addresses.
	rule(&body, "-A %s -m addrtype --dst-type LOCAL -j %s", ChainServices, ChainNodePorts)
	body.WriteString(nodePorts.String())

	nat.WriteString("*nat\n")
	for _, c := range chains {
		rule(&nat, ":%s - [0:0]", c)
	}
	nat.WriteString(body.String())
	nat.WriteString("COMMIT\n")

	var f strings.Builder
	f.WriteString("*filter\n")
	rule(&f, ":%s - [0:0]", ChainReject)
	f.WriteString(filter.String())
	f.WriteString("COMMIT\n")
	return Tables{NAT: nat.String(), Filter: f.String()}
}

type endpoint struct {
	ip   string
	port int32
}

// ready is the endpoints of r serving its pi-th port (the record lists
// not-ready replicas only for publishNotReadyAddresses, which serve).
func ready(r services.Record, pi int) []endpoint {
	var out []endpoint
	for _, e := range r.Endpoints {
		if pi < len(e.Ports) && e.Ports[pi] > 0 {
			out = append(out, endpoint{e.IP, e.Ports[pi]})
		}
	}
	return out
}

// probability is 1/n with the digits kube-proxy writes.
func probability(n int) string {
	return strconv.FormatFloat(1/float64(n), 'f', 10, 64)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// hash names a chain by what it serves (at most 28 characters in all).
func hash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return b32.EncodeToString(h[:])[:16]
}
