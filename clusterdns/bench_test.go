package clusterdns

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkQueryService is one A query for a Service name over UDP on
// loopback, answered from the table; BenchmarkQueryForwarded one for a
// name outside the cluster domain, forwarded to an upstream on loopback;
// BenchmarkQueryUpstream the same query asked of that upstream directly,
// the floor of any resolver on this machine.
func BenchmarkQueryService(b *testing.B) {
	_, addr := startB(b)
	benchQuery(b, addr, "backend.default.svc.cluster.local.")
}

func BenchmarkQueryForwarded(b *testing.B) {
	_, addr := startB(b)
	benchQuery(b, addr, "example.com.")
}

func BenchmarkQueryUpstream(b *testing.B) {
	s, _ := startB(b)
	benchQuery(b, s.upstreams[0], "example.com.")
}

func startB(b *testing.B) (*Server, string) { return start(b) }

func benchQuery(b *testing.B, addr, name string) {
	c := &dns.Client{}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	conn, err := c.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := c.ExchangeWithConn(m, conn); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
