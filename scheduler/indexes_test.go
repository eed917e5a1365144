package scheduler

import (
	"reflect"
	"testing"

	"driftless.dev/driftless/manifest"
)

// A request's indexes (a Job's active replicas) are arbitrary: exactly
// those are placed, and a kept index stays on its node.
func TestScheduleExplicitIndexes(t *testing.T) {
	job := wl("batch", 2, func(w *manifest.Workload) { w.Ref.Kind = "Job" })
	ask := func(idx ...int) map[manifest.Ref]Request {
		return map[manifest.Ref]Request{job.Ref: {Indexes: append([]int{}, idx...)}}
	}
	in := Input{DesiredCommit: "c1", Workloads: []manifest.Workload{job}, Nodes: []Node{node("a"), node("b")}, Requests: ask(3, 5)}
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
	in.Requests, in.Current = ask(5, 6), out.Placements
	out2 := Schedule(in)
	p2 := out2.Placements[job.Ref]
	if len(p2.Replicas) != 2 || p2.Replicas[0].Index != 5 || p2.Replicas[1].Index != 6 {
		t.Fatalf("replicas %+v, want indexes 5 and 6", p2.Replicas)
	}
	if p2.Replicas[0].Node != p.Replicas[1].Node {
		t.Errorf("index 5 moved from %s to %s", p.Replicas[1].Node, p2.Replicas[0].Node)
	}
	// An empty request, no replicas (whatever Replicas says).
	in.Requests, in.Current = ask(), out2.Placements
	if r := Schedule(in).Placements[job.Ref].Replicas; len(r) != 0 {
		t.Errorf("replicas %+v, want none", r)
	}
}
