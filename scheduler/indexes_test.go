package scheduler

import (
	"reflect"
	"testing"

	"driftless.dev/driftless/manifest"
)

// A Job's active replicas have arbitrary indexes: exactly those are placed,
// and a kept index stays on its node.
func TestScheduleExplicitIndexes(t *testing.T) {
	job := wl("batch", 2, func(w *manifest.Workload) { w.Ref.Kind = "Job"; w.Indexes = []int{3, 5} })
	in := Input{DesiredCommit: "c1", Workloads: []manifest.Workload{job}, Nodes: []Node{node("a"), node("b")}}
	out := Schedule(in)
	p := out.Placements[job.Ref]
	var idx []int
	for _, r := range p.Replicas {
		idx = append(idx, r.Index)
		if r.Node == "" {
			t.Errorf("replica %d pending: %v", r.Index, r.Pending)
		}
	}
	if !reflect.DeepEqual(idx, []int{3, 5}) {
		t.Fatalf("indexes %v, want [3 5]", idx)
	}
	// Index 3 finishes, 5 keeps running, 6 is new: 5 stays on its node.
	job.Indexes = []int{5, 6}
	in.Workloads, in.Current = []manifest.Workload{job}, out.Placements
	out2 := Schedule(in)
	p2 := out2.Placements[job.Ref]
	if len(p2.Replicas) != 2 || p2.Replicas[0].Index != 5 || p2.Replicas[1].Index != 6 {
		t.Fatalf("replicas %+v, want indexes 5 and 6", p2.Replicas)
	}
	if p2.Replicas[0].Node != p.Replicas[1].Node {
		t.Errorf("index 5 moved from %s to %s", p.Replicas[1].Node, p2.Replicas[0].Node)
	}
	// No indexes, no replicas.
	job.Indexes, job.Replicas = nil, 0
	in.Workloads, in.Current = []manifest.Workload{job}, out2.Placements
	if r := Schedule(in).Placements[job.Ref].Replicas; len(r) != 0 {
		t.Errorf("replicas %+v, want none", r)
	}
}
