package netproxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
)

// manyServices is n Services of eps endpoints each.
func manyServices(n, eps int) []services.Record {
	out := make([]services.Record, n)
	for i := range out {
		r := services.Record{
			Service:   manifest.Ref{Namespace: "default", Kind: "Service", Name: fmt.Sprintf("svc-%04d", i)},
			Type:      manifest.ServiceClusterIP,
			ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, 1+i%250),
			Ports:     []services.Port{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "8080"}},
		}
		for j := range eps {
			r.Endpoints = append(r.Endpoints, services.Endpoint{IP: fmt.Sprintf("10.244.%d.%d", j, 1+i%250), Node: "n", Ready: true, Ports: []int32{8080}})
		}
		out[i] = r
	}
	return out
}

// BenchmarkRender1000x10 is the text of 1,000 Services of 10 endpoints.
func BenchmarkRender1000x10(b *testing.B) {
	recs := manyServices(1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		Render(Config{}, recs)
	}
}

// BenchmarkSync1000x10 programs 1,000 Services of 10 endpoints into real
// iptables (a namespace of its own), one endpoint changing each time:
// what a readiness change costs a node with that many Services. The
// floor beside it is one iptables-restore of the same text alone.
func BenchmarkSync1000x10(b *testing.B) {
	recs := manyServices(1000, 10)
	inNetNSB(b, func() {
		var p Proxy
		ctx := context.Background()
		if err := p.Sync(ctx, Config{}, recs); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			recs[i%len(recs)].Endpoints[0].IP = fmt.Sprintf("10.245.%d.%d", i/250%250, 1+i%250)
			i++
			if err := p.Sync(ctx, Config{}, recs); err != nil {
				b.Fatal(err)
			}
		}
		rules := strings.Count(Render(Config{}, recs).NAT, "\n-A ")
		b.ReportMetric(float64(rules), "rules")
	})
}

// BenchmarkRestoreFloor1000x10 is one iptables-restore of the rules of
// BenchmarkSync1000x10, nothing else: the least a change can cost.
func BenchmarkRestoreFloor1000x10(b *testing.B) {
	text := Render(Config{}, manyServices(1000, 10))
	inNetNSB(b, func() {
		ctx := context.Background()
		for b.Loop() {
			if err := restore(ctx, text.NAT); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func inNetNSB(b *testing.B, f func()) {
	b.Helper()
	inNetNS(b, func() error { f(); return nil })
}
