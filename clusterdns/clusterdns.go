// Package clusterdns is the DNS server each agent runs for its own pods,
// answering as CoreDNS's kubernetes plugin does from the Service records
// of the status branch: <svc>.<ns>.svc.<domain> is the ClusterIP (the
// ready replicas' addresses for a headless Service), SRV records for
// named ports, <hostname>.<subdomain>.<ns>.svc.<domain> for pods that
// set both, ExternalName as a CNAME. Other names go to the host's
// resolvers.
package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
)

// TTL of the answers from Service records, as CoreDNS's default.
const TTL = 5

// Server answers DNS queries from the newest table it was given.
type Server struct {
	domain    string // "cluster.local." (fqdn)
	upstreams []string
	log       *slog.Logger
	table     atomic.Pointer[table]
	servers   []*dns.Server
	// Queries counts the queries answered (for benchmarks and metrics).
	Queries atomic.Int64
}

// Config configures a Server.
type Config struct {
	// Domain is the cluster domain (cluster.local).
	Domain string
	// Upstreams are resolvers (ip:port) for names outside Domain; default
	// the nameservers of /etc/resolv.conf.
	Upstreams []string
	Log       *slog.Logger
}

// New returns a Server with an empty table.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{domain: dns.Fqdn(strings.ToLower(cfg.Domain)), upstreams: cfg.Upstreams, log: cfg.Log}
	if len(s.upstreams) == 0 {
		if c, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
			for _, ns := range c.Servers {
				s.upstreams = append(s.upstreams, net.JoinHostPort(ns, c.Port))
			}
		}
	}
	s.table.Store(&table{})
	return s, nil
}

// ListenAndServe serves UDP and TCP on addr until ctx ends. It returns
// once both listen (or one fails).
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("cluster DNS: listen udp %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("cluster DNS: listen tcp %s: %w", addr, err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	s.servers = []*dns.Server{udp, tcp}
	for _, srv := range s.servers {
		go func() {
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				s.log.Warn("cluster DNS stopped", "err", err)
			}
		}()
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			_ = srv.ShutdownContext(sctx)
		}
	}()
	return nil
}

// Addr is the UDP address served (after ListenAndServe).
func (s *Server) Addr() string {
	if len(s.servers) == 0 {
		return ""
	}
	return s.servers[0].PacketConn.LocalAddr().String()
}

// Update replaces the table with the one of recs.
func (s *Server) Update(recs []services.Record) {
	s.table.Store(build(s.domain, recs))
}

// table is every name the server answers for, lower case and fully
// qualified.
type table struct {
	a     map[string][]netip.Addr
	srv   map[string][]*dns.SRV
	cname map[string]string
	// names are every name that exists (with any type), and every
	// name with names below it (empty non-terminals: NODATA, not NXDOMAIN).
	names map[string]bool
}

func build(domain string, recs []services.Record) *table {
	t := &table{a: map[string][]netip.Addr{}, srv: map[string][]*dns.SRV{}, cname: map[string]string{}, names: map[string]bool{}}
	exist := func(name string) {
		for n := name; strings.HasSuffix(n, domain) && n != domain; {
			t.names[n] = true
			_, rest, _ := strings.Cut(n, ".")
			n = rest
		}
	}
	for _, r := range recs {
		svc := fmt.Sprintf("%s.%s.svc.%s", r.Service.Name, r.Service.Namespace, domain)
		exist(svc)
		if r.Type == manifest.ServiceExternalName {
			t.cname[svc] = dns.Fqdn(r.ExternalName)
			continue
		}
		headless := r.ClusterIP == manifest.ClusterIPNone
		if !headless {
			if a, err := netip.ParseAddr(r.ClusterIP); err == nil {
				t.a[svc] = append(t.a[svc], a)
			}
		}
		for _, e := range r.Endpoints {
			a, err := netip.ParseAddr(e.IP)
			if err != nil || !headless {
				continue
			}
			t.a[svc] = append(t.a[svc], a)
			name := endpointName(r, e) + "." + svc
			t.a[name] = append(t.a[name], a)
			exist(name)
		}
		for pi, p := range r.Ports {
			if p.Name == "" {
				continue
			}
			name := fmt.Sprintf("_%s._%s.%s", p.Name, strings.ToLower(p.Protocol), svc)
			exist(name)
			if !headless {
				t.srv[name] = append(t.srv[name], &dns.SRV{Priority: 0, Weight: 100, Port: uint16(p.Port), Target: svc})
				continue
			}
			for _, e := range r.Endpoints {
				if pi >= len(e.Ports) || e.Ports[pi] == 0 {
					continue
				}
				t.srv[name] = append(t.srv[name], &dns.SRV{Priority: 0, Weight: 100, Port: uint16(e.Ports[pi]), Target: endpointName(r, e) + "." + svc})
			}
		}
	}
	return t
}

// endpointName is an endpoint's name under its headless Service: the
// pod's hostname when its subdomain is the Service, else its address
// with dashes (a-b-c-d), as CoreDNS names them.
func endpointName(r services.Record, e services.Endpoint) string {
	if e.Hostname != "" && e.Subdomain == r.Service.Name {
		return e.Hostname
	}
	return strings.ReplaceAll(e.IP, ".", "-")
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.Queries.Add(1)
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if name != s.domain && !strings.HasSuffix(name, "."+s.domain) {
		s.forward(w, req)
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	t := s.table.Load()
	hdr := func(rtype uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: rtype, Class: dns.ClassINET, Ttl: TTL}
	}
	if target, ok := t.cname[name]; ok {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: target})
		_ = w.WriteMsg(m)
		return
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeANY:
		for _, a := range t.a[name] {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
		}
	case dns.TypeSRV:
		for _, r := range t.srv[name] {
			rr := *r
			rr.Hdr = hdr(dns.TypeSRV)
			m.Answer = append(m.Answer, &rr)
			for _, a := range t.a[r.Target] {
				m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: r.Target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: TTL}, A: a.AsSlice()})
			}
		}
	}
	if len(m.Answer) == 0 && !t.names[name] {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa()}
	}
	_ = w.WriteMsg(m)
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: s.domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns: "ns.dns." + s.domain, Mbox: "hostmaster." + s.domain, Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: TTL}
}

var clientPool = sync.Pool{New: func() any { return &dns.Client{Timeout: 2 * time.Second} }}

// forward sends a query for a name outside the cluster domain to the
// host's resolvers in order, over TCP when the answer was truncated.
func (s *Server) forward(w dns.ResponseWriter, req *dns.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	c := clientPool.Get().(*dns.Client)
	defer clientPool.Put(c)
	var lastErr error = errors.New("no upstream resolver")
	for _, up := range s.upstreams {
		r, _, err := c.ExchangeContext(ctx, req, up)
		if err == nil && r != nil && r.Truncated {
			tc := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
			r, _, err = tc.ExchangeContext(ctx, req, up)
		}
		if err != nil {
			lastErr = err
			continue
		}
		r.Id = req.Id
		_ = w.WriteMsg(r)
		return
	}
	s.log.Debug("cluster DNS: forward failed", "name", req.Question[0].Name, "err", lastErr)
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	_ = w.WriteMsg(m)
}
