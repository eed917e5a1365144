package metrics

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

// BenchmarkScrape1000 is one /metrics scrape of a leader whose cluster has
// 1,000 replicas (100 workloads of 10, on 20 nodes), 50 of them here.
func BenchmarkScrape1000(b *testing.B) {
	st := State{Node: "n0", IsLeader: true, Term: 3, DesiredCommit: "abc", Cluster: &status.State{
		Nodes: map[string]status.NodeStatus{}, Placements: map[manifest.Ref]manifest.Placement{}}}
	for n := 0; n < 20; n++ {
		st.Cluster.Nodes[fmt.Sprintf("n%d", n)] = status.NodeStatus{State: status.NodeAlive}
	}
	for w := 0; w < 100; w++ {
		ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: fmt.Sprintf("app-%d", w)}
		var rs []manifest.ReplicaPlacement
		for i := 0; i < 10; i++ {
			node := fmt.Sprintf("n%d", (w*10+i)%20)
			s := &manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true}
			rs = append(rs, manifest.ReplicaPlacement{Index: i, Node: node, Status: s})
			if node == "n0" {
				st.Replicas = append(st.Replicas, Replica{Workload: ref, Index: i, Status: *s})
			}
		}
		st.Cluster.Placements[ref] = manifest.Placement{Workload: ref, Replicas: rs}
	}
	m := New([]string{"file:///srv/fleet.git"}, func() State { return st })
	h := m.Handler()
	b.ResetTimer()
	var size int
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
