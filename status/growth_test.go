package status

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
)

// BenchmarkStatusGrowth measures how fast the status branch grows under
// churn: a cluster of 3 nodes and 20 workloads of 3 replicas where every
// commit changes one replica's observed state (a restart). It reports the
// packed bytes per status commit, and what that makes per day at one
// commit per minute and at the worst case of one commit every 2 s (the
// default --status-interval, under constant churn).
func BenchmarkStatusGrowth(b *testing.B) {
	ctx := context.Background()
	dir, url := testenv.NewBareRepo(b)
	s, err := Open(ctx, Config{URL: url, Dir: filepath.Join(b.TempDir(), "s")})
	if err != nil {
		b.Fatal(err)
	}
	desired := strings.Repeat("d", 40)
	nodes := []string{"node-a", "node-b", "node-c"}
	_, _, err = s.Update(ctx, func(cur *State) (*State, *Message, error) {
		cur.Cluster.Leader, cur.Cluster.Term, cur.Cluster.DesiredCommit = "node-a", 1, desired
		for _, n := range nodes {
			cur.Nodes[n] = NodeStatus{Name: n, State: "alive", Labels: map[string]string{"zone": n}, Capacity: map[string]string{"cpu": "2", "memory": "8Gi"}}
		}
		for w := 0; w < 20; w++ {
			ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: fmt.Sprintf("app-%02d", w)}
			p := manifest.Placement{Workload: ref, DesiredCommit: desired, SpecHash: "0123456789"}
			for i := 0; i < 3; i++ {
				p.Replicas = append(p.Replicas, manifest.ReplicaPlacement{Index: i, Node: nodes[i], SpecHash: "0123456789",
					Status: &manifest.ReplicaStatus{Phase: "Running", Ready: true}})
			}
			cur.Placements[ref] = p
		}
		return cur, &Message{Summary: "initial", Leader: "node-a", Term: 1, DesiredCommit: desired}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	base := packedSize(b, dir)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: fmt.Sprintf("app-%02d", i%20)}
		_, changed, err := s.Update(ctx, func(cur *State) (*State, *Message, error) {
			p := cur.Placements[ref]
			r := &p.Replicas[i%3]
			r.Status.Restarts++
			r.Status.Reason = "CrashLoopBackOff"
			r.Status.Message = "last exit code " + strconv.Itoa(i%7)
			cur.Placements[ref] = p
			return cur, &Message{Summary: fmt.Sprintf("%s[%d]: restart", ref.Name, i%3), Leader: "node-a", Term: 1, DesiredCommit: desired}, nil
		})
		if err != nil || !changed {
			b.Fatalf("update %d: %v %v", i, changed, err)
		}
	}
	b.StopTimer()
	per := float64(packedSize(b, dir)-base) / float64(b.N)
	b.ReportMetric(per, "bytes/commit")
	b.ReportMetric(per*1440/1e6, "MB/day@1/min")
	b.ReportMetric(per*43200/1e6, "MB/day@1/2s")
}

// packedSize repacks the bare repository and returns its pack size.
func packedSize(b *testing.B, dir string) int64 {
	b.Helper()
	if out, err := exec.Command("git", "-C", dir, "repack", "-adq").CombinedOutput(); err != nil {
		b.Fatalf("repack: %v %s", err, out)
	}
	out, err := exec.Command("git", "-C", dir, "count-objects", "-v").Output()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "size-pack: "); ok {
			kb, _ := strconv.ParseInt(v, 10, 64)
			return kb * 1024
		}
	}
	b.Fatal("no size-pack")
	return 0
}
