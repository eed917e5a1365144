package clusterdns

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
)

func records() []services.Record {
	ref := func(n string) manifest.Ref { return manifest.Ref{Namespace: "default", Kind: "Service", Name: n} }
	return []services.Record{
		{Service: ref("backend"), Type: manifest.ServiceClusterIP, ClusterIP: "10.96.0.20",
			Ports:     []services.Port{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "http"}},
			Endpoints: []services.Endpoint{{IP: "10.244.1.5", Ready: true, Ports: []int32{8080}}}},
		{Service: ref("db"), Type: manifest.ServiceClusterIP, ClusterIP: manifest.ClusterIPNone,
			Ports: []services.Port{{Name: "pg", Protocol: "TCP", Port: 5432, TargetPort: "5432"}},
			Endpoints: []services.Endpoint{
				{IP: "10.244.1.7", Hostname: "db-0", Subdomain: "db", Ready: true, Ports: []int32{5432}},
				{IP: "10.244.2.7", Ready: true, Ports: []int32{5432}},
			}},
		{Service: ref("ext"), Type: manifest.ServiceExternalName, ExternalName: "db.example.com"},
	}
}

// start serves a Server on a loopback port with an upstream of its own
// (another real DNS server answering every name with 192.0.2.1).
func start(t testing.TB) (*Server, string) {
	t.Helper()
	up := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.1")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	up.NotifyStartedFunc = func() { close(started) }
	go up.ListenAndServe()
	<-started
	t.Cleanup(func() { up.Shutdown() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := New(Config{Domain: "cluster.local", Upstreams: []string{up.PacketConn.LocalAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.Update(records())
	return s, s.Addr()
}

func ask(t testing.TB, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func answers(r *dns.Msg) string {
	var out []string
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[3:], " "))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func TestAnswers(t *testing.T) {
	_, addr := start(t)
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
		rcode int
	}{
		{"backend.default.svc.cluster.local", dns.TypeA, "A 10.96.0.20", dns.RcodeSuccess},
		{"BACKEND.Default.svc.cluster.local", dns.TypeA, "A 10.96.0.20", dns.RcodeSuccess},
		{"_http._tcp.backend.default.svc.cluster.local", dns.TypeSRV, "SRV 0 100 80 backend.default.svc.cluster.local.", dns.RcodeSuccess},
		{"db.default.svc.cluster.local", dns.TypeA, "A 10.244.1.7; A 10.244.2.7", dns.RcodeSuccess},
		{"db-0.db.default.svc.cluster.local", dns.TypeA, "A 10.244.1.7", dns.RcodeSuccess},
		{"10-244-2-7.db.default.svc.cluster.local", dns.TypeA, "A 10.244.2.7", dns.RcodeSuccess},
		{"_pg._tcp.db.default.svc.cluster.local", dns.TypeSRV, "SRV 0 100 5432 10-244-2-7.db.default.svc.cluster.local.; SRV 0 100 5432 db-0.db.default.svc.cluster.local.", dns.RcodeSuccess},
		{"ext.default.svc.cluster.local", dns.TypeA, "CNAME db.example.com.", dns.RcodeSuccess},
		// A name that exists with another type: NODATA, not NXDOMAIN.
		{"backend.default.svc.cluster.local", dns.TypeAAAA, "", dns.RcodeSuccess},
		{"default.svc.cluster.local", dns.TypeA, "", dns.RcodeSuccess},
		{"nope.default.svc.cluster.local", dns.TypeA, "", dns.RcodeNameError},
		// The search path tries these first: they must fail fast, here.
		{"example.com.default.svc.cluster.local", dns.TypeA, "", dns.RcodeNameError},
		// Outside the domain: the upstream's answer.
		{"example.com", dns.TypeA, "A 192.0.2.1", dns.RcodeSuccess},
	} {
		r := ask(t, addr, tc.name, tc.qtype)
		if got := answers(r); got != tc.want || r.Rcode != tc.rcode {
			t.Errorf("%s %s: got %q rcode %d, want %q rcode %d", tc.name, dns.TypeToString[tc.qtype], got, r.Rcode, tc.want, tc.rcode)
		}
	}
}

func TestUpdateReplacesTable(t *testing.T) {
	s, addr := start(t)
	recs := records()
	recs[0].ClusterIP = "10.96.0.99"
	s.Update(recs[:1])
	if got := answers(ask(t, addr, "backend.default.svc.cluster.local", dns.TypeA)); got != "A 10.96.0.99" {
		t.Fatalf("got %q", got)
	}
	if r := ask(t, addr, "db.default.svc.cluster.local", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("a removed Service must be NXDOMAIN, got %s", fmt.Sprint(r.Rcode))
	}
}
