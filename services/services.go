// Package services turns the Services of a desired commit into the
// records the leader commits on the status branch: a virtual address
// (ClusterIP) and node ports allocated once and kept for the Service's
// life, and the endpoints, the ready replicas its selector matches with
// the port each one serves. Pure: every node programs its rules and
// answers DNS from these records alone.
package services

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"driftless.dev/driftless/manifest"
)

// Record is services/<namespace>/<name>.yaml on the status branch.
type Record struct {
	Service manifest.Ref `json:"service"`
	Type    string       `json:"type"`
	// ClusterIP is the virtual address ("None" for a headless Service,
	// "" for ExternalName or while none could be given: see Error).
	ClusterIP    string `json:"clusterIP,omitempty"`
	ExternalName string `json:"externalName,omitempty"`
	Ports        []Port `json:"ports,omitempty"`
	// SessionAffinity is ClientIP or empty; AffinitySeconds its timeout.
	SessionAffinity string `json:"sessionAffinity,omitempty"`
	AffinitySeconds int32  `json:"affinitySeconds,omitempty"`
	// Endpoints are the replicas serving the Service, sorted by address.
	Endpoints []Endpoint `json:"endpoints"`
	// Error says why the Service has no address (its clusterIP is outside
	// the service range or taken, the range is full).
	Error string `json:"error,omitempty"`
}

// Port is one port of a Service, its node port allocated.
type Port struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
	// TargetPort as the Service gives it (a number or a port name).
	TargetPort string `json:"targetPort"`
	NodePort   int32  `json:"nodePort,omitempty"`
}

// Endpoint is one replica behind a Service.
type Endpoint struct {
	IP   string `json:"ip"`
	Node string `json:"node"`
	// Replica is Kind/name/index of the workload replica.
	Replica string `json:"replica"`
	// Hostname and Subdomain are the pod's (for its own DNS name).
	Hostname  string `json:"hostname,omitempty"`
	Subdomain string `json:"subdomain,omitempty"`
	Ready     bool   `json:"ready"`
	// Ports are the replica's ports for the Service's, in order (0: the
	// replica has no port of that name and does not serve it).
	Ports []int32 `json:"ports"`
}

// Config is the address ranges Services are given addresses from.
type Config struct {
	// CIDR is --service-cidr; ClusterDNS the address of the cluster DNS
	// (reserved, never given to a Service).
	CIDR       netip.Prefix
	ClusterDNS netip.Addr
}

// DefaultCIDR is Kubernetes' usual service range.
var DefaultCIDR = netip.MustParsePrefix("10.96.0.0/16")

// DNSAddr is the conventional cluster DNS address of a range: its tenth.
func DNSAddr(cidr netip.Prefix) netip.Addr {
	a := cidr.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}

// Input is what Compute needs.
type Input struct {
	Config   Config
	Services []manifest.Service
	// Workloads are the commit's workloads (their template labels and
	// named ports).
	Workloads []manifest.Workload
	// Placements are the replicas as the status will hold them.
	Placements map[manifest.Ref]manifest.Placement
	// Alive says whether a node is alive: a replica on another node is
	// never an endpoint.
	Alive func(node string) bool
	// Previous are the records on the branch (their addresses are kept).
	Previous map[manifest.Ref]Record
}

// Compute returns the record of every Service of the commit.
func Compute(in Input) map[manifest.Ref]Record {
	out := make(map[manifest.Ref]Record, len(in.Services))
	svcs := append([]manifest.Service(nil), in.Services...)
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Ref().String() < svcs[j].Ref().String() })

	// Addresses held: every kept previous allocation, then explicit asks.
	ips := map[netip.Addr]manifest.Ref{}
	ports := map[string]manifest.Ref{}
	portKey := func(proto string, n int32) string { return proto + "/" + strconv.Itoa(int(n)) }
	prevIP := map[manifest.Ref]netip.Addr{}
	for _, s := range svcs {
		p, ok := in.Previous[s.Ref()]
		if !ok {
			continue
		}
		if a, err := netip.ParseAddr(p.ClusterIP); err == nil && in.Config.CIDR.Contains(a) &&
			(s.Spec.ClusterIP == "" || s.Spec.ClusterIP == p.ClusterIP) && !s.Spec.Headless() && s.Spec.Type != manifest.ServiceExternalName {
			ips[a] = s.Ref()
			prevIP[s.Ref()] = a
		}
		for _, pp := range p.Ports {
			if pp.NodePort != 0 && s.Spec.NeedsNodePorts() {
				ports[portKey(pp.Protocol, pp.NodePort)] = s.Ref()
			}
		}
	}
	for _, s := range svcs {
		r := Record{Service: s.Ref(), Type: s.Spec.Type, ExternalName: s.Spec.ExternalName, Endpoints: []Endpoint{}}
		if s.Spec.SessionAffinity == "ClientIP" {
			r.SessionAffinity, r.AffinitySeconds = "ClientIP", s.Spec.AffinityTimeout()
		}
		switch {
		case s.Spec.Type == manifest.ServiceExternalName:
		case s.Spec.Headless():
			r.ClusterIP = manifest.ClusterIPNone
		case prevIP[s.Ref()].IsValid():
			r.ClusterIP = prevIP[s.Ref()].String()
		case s.Spec.ClusterIP != "":
			a, _ := netip.ParseAddr(s.Spec.ClusterIP)
			switch owner, taken := ips[a]; {
			case !in.Config.CIDR.Contains(a):
				r.Error = fmt.Sprintf("clusterIP %s is outside the service range %s", a, in.Config.CIDR)
			case a == in.Config.ClusterDNS:
				r.Error = fmt.Sprintf("clusterIP %s is the cluster DNS address", a)
			case taken && owner != s.Ref():
				r.Error = fmt.Sprintf("clusterIP %s is allocated to Service %s", a, owner)
			default:
				ips[a] = s.Ref()
				r.ClusterIP = a.String()
			}
		default:
			if a, ok := allocateIP(in.Config, s.Ref(), ips); ok {
				ips[a] = s.Ref()
				r.ClusterIP = a.String()
			} else {
				r.Error = "the service range " + in.Config.CIDR.String() + " is full"
			}
		}
		prev := in.Previous[s.Ref()]
		for i, sp := range s.Spec.Ports {
			p := Port{Name: sp.Name, Protocol: sp.Protocol, Port: sp.Port, TargetPort: sp.Target().String()}
			if s.Spec.NeedsNodePorts() {
				p.NodePort = sp.NodePort
				if p.NodePort == 0 && i < len(prev.Ports) && prev.Ports[i].Protocol == p.Protocol && prev.Ports[i].NodePort != 0 &&
					ports[portKey(p.Protocol, prev.Ports[i].NodePort)] == s.Ref() {
					p.NodePort = prev.Ports[i].NodePort
				}
				k := portKey(p.Protocol, p.NodePort)
				switch owner, taken := ports[k]; {
				case p.NodePort != 0 && taken && owner != s.Ref():
					r.Error = fmt.Sprintf("nodePort %d/%s is allocated to Service %s", p.NodePort, p.Protocol, owner)
					p.NodePort = 0
				case p.NodePort != 0:
					ports[k] = s.Ref()
				default:
					if n, ok := allocatePort(s.Ref(), i, p.Protocol, ports, portKey); ok {
						p.NodePort = n
						ports[portKey(p.Protocol, n)] = s.Ref()
					} else {
						r.Error = "no node port is free"
					}
				}
			}
			r.Ports = append(r.Ports, p)
		}
		r.Endpoints = endpoints(in, s, r.Ports)
		out[s.Ref()] = r
	}
	return out
}

// allocateIP picks a free address of the range, starting at a place
// derived from the Service's name so that allocations do not depend on
// the order Services appear in. The network address, the first address
// and the cluster DNS address are never given.
func allocateIP(c Config, ref manifest.Ref, used map[netip.Addr]manifest.Ref) (netip.Addr, bool) {
	bits := 32 - c.CIDR.Bits()
	if !c.CIDR.Addr().Is4() || bits < 2 {
		return netip.Addr{}, false
	}
	size := uint32(1) << min(bits, 24) // at most the first 2^24 addresses
	base := c.CIDR.Masked().Addr().As4()
	b := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	h := fnv.New32a()
	h.Write([]byte(ref.String()))
	start := h.Sum32() % size
	for i := uint32(0); i < size; i++ {
		off := (start + i) % size
		if off <= 1 || off == size-1 {
			continue // network, first and broadcast addresses
		}
		v := b + off
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if a == c.ClusterDNS {
			continue
		}
		if _, taken := used[a]; !taken {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func allocatePort(ref manifest.Ref, i int, proto string, used map[string]manifest.Ref, key func(string, int32) string) (int32, bool) {
	const size = manifest.NodePortMax - manifest.NodePortMin + 1
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", ref, i)
	start := h.Sum32() % size
	for j := uint32(0); j < size; j++ {
		n := int32(manifest.NodePortMin + (start+j)%size)
		if _, taken := used[key(proto, n)]; !taken {
			return n, true
		}
	}
	return 0, false
}

// endpoints lists the replicas a Service sends traffic to: of the
// workloads of its namespace whose template labels its selector matches,
// those bound to an alive node, running with an address, and ready
// (or not, with publishNotReadyAddresses).
func endpoints(in Input, s manifest.Service, ports []Port) []Endpoint {
	out := []Endpoint{}
	if len(s.Spec.Selector) == 0 || s.Spec.Type == manifest.ServiceExternalName {
		return out
	}
	sel := manifest.LabelSelector{MatchLabels: s.Spec.Selector}
	for i := range in.Workloads {
		w := &in.Workloads[i]
		if w.Namespace != s.Metadata.Namespace || !sel.Matches(w.Template.Metadata.Labels) {
			continue
		}
		targets := make([]int32, len(ports))
		for j := range ports {
			targets[j] = targetPort(w.Template.Spec, s.Spec.Ports[j])
		}
		pl, ok := in.Placements[w.Ref]
		if !ok {
			continue
		}
		for _, r := range pl.Replicas {
			st := r.Status
			if r.Node == "" || st == nil || st.PodIP == "" || st.Phase != manifest.PhaseRunning || (in.Alive != nil && !in.Alive(r.Node)) {
				continue
			}
			if !st.Ready && !s.Spec.PublishNotReadyAddresses {
				continue
			}
			host := w.Template.Spec.Hostname
			if w.Stateful != nil && host == "" {
				// As the StatefulSet controller sets each pod's hostname.
				host = manifest.PodName(w.Ref, r.Index)
			}
			out = append(out, Endpoint{
				IP: st.PodIP, Node: r.Node, Replica: w.Kind + "/" + w.Name + "/" + strconv.Itoa(r.Index),
				Hostname: host, Subdomain: w.Template.Spec.Subdomain,
				Ready: st.Ready, Ports: targets,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IP != out[j].IP {
			return out[i].IP < out[j].IP
		}
		return out[i].Replica < out[j].Replica
	})
	return out
}

// targetPort is the replica port a Service port sends to: the number it
// gives, or the containerPort of that name (0 when no container has one).
func targetPort(spec manifest.PodSpec, sp manifest.ServicePort) int32 {
	t := sp.Target()
	if !t.IsString {
		return t.IntVal
	}
	for _, cs := range [][]manifest.Container{spec.Containers, spec.InitContainers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.Name == t.StrVal {
					return p.ContainerPort
				}
			}
		}
	}
	return 0
}

// EnvVars are the variables Kubernetes gives a pod for the Services of
// its namespace that have a virtual address (enableServiceLinks):
// <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT[_<PORT>] and the Docker link
// style <NAME>_PORT[_<port>_<PROTO>[_PROTO|_PORT|_ADDR]], in name order.
func EnvVars(recs []Record, namespace string) [][2]string {
	var rs []Record
	for _, r := range recs {
		if r.Service.Namespace != namespace || r.Type == manifest.ServiceExternalName || len(r.Ports) == 0 {
			continue
		}
		if _, err := netip.ParseAddr(r.ClusterIP); err != nil {
			continue // headless, or no address
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Service.Name < rs[j].Service.Name })
	var out [][2]string
	for _, r := range rs {
		name := envName(r.Service.Name)
		first := r.Ports[0]
		out = append(out, [2]string{name + "_SERVICE_HOST", r.ClusterIP}, [2]string{name + "_SERVICE_PORT", strconv.Itoa(int(first.Port))})
		for _, p := range r.Ports {
			if p.Name != "" {
				out = append(out, [2]string{name + "_SERVICE_PORT_" + envName(p.Name), strconv.Itoa(int(p.Port))})
			}
		}
		proto := strings.ToLower(first.Protocol)
		out = append(out, [2]string{name + "_PORT", fmt.Sprintf("%s://%s:%d", proto, r.ClusterIP, first.Port)})
		for _, p := range r.Ports {
			pr := strings.ToLower(p.Protocol)
			pre := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(pr))
			out = append(out,
				[2]string{pre, fmt.Sprintf("%s://%s:%d", pr, r.ClusterIP, p.Port)},
				[2]string{pre + "_PROTO", pr},
				[2]string{pre + "_PORT", strconv.Itoa(int(p.Port))},
				[2]string{pre + "_ADDR", r.ClusterIP})
		}
	}
	return out
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

// Equal reports whether two records say the same (every field).
func (r Record) Equal(o Record) bool {
	return r.Service == o.Service && r.Type == o.Type && r.ClusterIP == o.ClusterIP && r.ExternalName == o.ExternalName &&
		r.SessionAffinity == o.SessionAffinity && r.AffinitySeconds == o.AffinitySeconds && r.Error == o.Error &&
		slices.Equal(r.Ports, o.Ports) && slices.EqualFunc(r.Endpoints, o.Endpoints, func(x, y Endpoint) bool {
		return x.IP == y.IP && x.Node == y.Node && x.Replica == y.Replica && x.Hostname == y.Hostname &&
			x.Subdomain == y.Subdomain && x.Ready == y.Ready && slices.Equal(x.Ports, y.Ports)
	})
}
