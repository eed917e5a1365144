package scheduler

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

func loadSet(t *testing.T, doc string) *manifest.Set {
	t.Helper()
	set, err := manifest.Load([]manifest.File{{Path: "t.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

const prioDocs = `apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: never}
value: 1000
preemptionPolicy: Never
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: low}
spec:
  replicas: 2
  selector: {matchLabels: {app: low}}
  template:
    metadata: {labels: {app: low}}
    spec:
      containers: [{name: c, image: busybox, resources: {requests: {cpu: 600m}}}]
`

func highDoc(class string) string {
	return `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: high}
spec:
  replicas: 1
  selector: {matchLabels: {app: high}}
  template:
    metadata: {labels: {app: high}}
    spec:
      priorityClassName: ` + class + `
      containers: [{name: c, image: busybox, resources: {requests: {cpu: 800m}}}]
`
}

func oneCPUNodes(names ...string) []Node {
	var out []Node
	for _, n := range names {
		out = append(out, Node{Name: n, Alive: true, Allocatable: map[string]resource.Quantity{"cpu": resource.MustParse("1")}})
	}
	return out
}

func ready(node string) manifest.ReplicaPlacement {
	return manifest.ReplicaPlacement{Node: node, Status: &manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true}}
}

func TestPreemptionEvictsLowerPriority(t *testing.T) {
	for _, tc := range []struct {
		name, class, extra string
		preempts           bool
	}{
		{"higher priority preempts", "high", "", true},
		{"preemptionPolicy Never waits", "never", "", false},
		{"a budget keeps the victim", "high", "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: low}\nspec: {minAvailable: 2, selector: {matchLabels: {app: low}}}\n", false},
		{"a budget that allows one", "high", "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: low}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: low}}}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := loadSet(t, prioDocs+highDoc(tc.class)+tc.extra)
			low := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "low"}
			high := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "high"}
			r0, r1 := ready("a"), ready("b")
			r1.Index = 1
			cur := map[manifest.Ref]manifest.Placement{low: {Workload: low, SpecHash: set.Workloads[1].SpecHash, Replicas: []manifest.ReplicaPlacement{r0, r1}}}
			for i := range cur[low].Replicas {
				cur[low].Replicas[i].SpecHash = cur[low].SpecHash
			}
			out := Schedule(Input{Workloads: set.Workloads, Nodes: oneCPUNodes("a", "b"), Current: cur, Budgets: set.Budgets})
			h := out.Placements[high].Replicas[0]
			lp := out.Placements[low].Replicas
			if !tc.preempts {
				if h.Node != "" || lp[0].Node == "" || lp[1].Node == "" {
					t.Fatalf("high %+v low %+v", h, lp)
				}
				return
			}
			if h.Node != "a" {
				t.Fatalf("high on %q (pending %v), want a (fewest victims, first node)", h.Node, h.Pending)
			}
			if lp[0].Node != "" || len(lp[0].Pending) == 0 || !strings.HasPrefix(lp[0].Pending[0], "preempted by default/high[0] (priority 1000 > 0) on a") {
				t.Fatalf("victim %+v", lp[0])
			}
			if lp[1].Node != "b" {
				t.Fatalf("the other low replica moved: %+v", lp[1])
			}
		})
	}
}

func TestDrainHonoursBudget(t *testing.T) {
	doc := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
`
	set := loadSet(t, doc)
	web := set.Workloads[0]
	nodes := []Node{{Name: "a", Alive: true, Unschedulable: true, Draining: true}, {Name: "b", Alive: true}, {Name: "c", Alive: true}}
	place := func(rs ...manifest.ReplicaPlacement) map[manifest.Ref]manifest.Placement {
		for i := range rs {
			rs[i].Index, rs[i].SpecHash = i, web.SpecHash
		}
		return map[manifest.Ref]manifest.Placement{web.Ref: {Workload: web.Ref, SpecHash: web.SpecHash, Replicas: rs}}
	}
	// Both on the drained node: one may go (minAvailable 1), the other
	// stays and says which budget keeps it.
	out := Schedule(Input{Workloads: set.Workloads, Nodes: nodes, Current: place(ready("a"), ready("a")), Budgets: set.Budgets})
	rs := out.Placements[web.Ref].Replicas
	if rs[0].Node == "a" || rs[0].Node == "" || rs[1].Node != "a" || !strings.Contains(rs[1].Disruption, "eviction blocked by PodDisruptionBudget default/web") {
		t.Fatalf("first pass: %+v", rs)
	}
	// The moved one not ready yet: the second still waits.
	moved := manifest.ReplicaPlacement{Node: rs[0].Node}
	out = Schedule(Input{Workloads: set.Workloads, Nodes: nodes, Current: place(moved, ready("a")), Budgets: set.Budgets})
	if rs := out.Placements[web.Ref].Replicas; rs[1].Node != "a" || rs[1].Disruption == "" {
		t.Fatalf("while the moved replica is not ready: %+v", rs)
	}
	// Ready elsewhere: the second goes too.
	out = Schedule(Input{Workloads: set.Workloads, Nodes: nodes, Current: place(ready(rs[0].Node), ready("a")), Budgets: set.Budgets})
	if rs := out.Placements[web.Ref].Replicas; rs[1].Node == "a" || rs[1].Node == "" || rs[1].Disruption != "" {
		t.Fatalf("once the first is ready elsewhere: %+v", rs)
	}
	// Without a budget, both go at once.
	out = Schedule(Input{Workloads: set.Workloads, Nodes: nodes, Current: place(ready("a"), ready("a"))})
	if rs := out.Placements[web.Ref].Replicas; rs[0].Node == "a" || rs[1].Node == "a" {
		t.Fatalf("without a budget: %+v", rs)
	}
}
