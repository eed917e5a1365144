package scheduler

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"pgregory.net/rapid"

	"driftless.dev/driftless/manifest"
)

func wl(name string, replicas int, mod ...func(*manifest.Workload)) manifest.Workload {
	w := manifest.Workload{
		Ref:      manifest.Ref{Namespace: "default", Kind: "Deployment", Name: name},
		Replicas: replicas,
		SpecHash: "h-" + name,
		Template: manifest.PodTemplateSpec{Spec: manifest.PodSpec{Containers: []manifest.Container{{Name: "main", Image: "busybox"}}}},
	}
	for _, m := range mod {
		m(&w)
	}
	return w
}

func node(name string, mod ...func(*Node)) Node {
	n := Node{Name: name, Alive: true, Labels: map[string]string{"kubernetes.io/hostname": name}}
	for _, m := range mod {
		m(&n)
	}
	return n
}

func TestScheduleSpreadsAndIsStable(t *testing.T) {
	in := Input{DesiredCommit: "c1", Workloads: []manifest.Workload{wl("web", 3)}, Nodes: []Node{node("a"), node("b"), node("c")}}
	out := Schedule(in)
	p := out.Placements[in.Workloads[0].Ref]
	seen := map[string]bool{}
	for _, n := range p.Nodes() {
		seen[n] = true
	}
	if len(seen) != 3 {
		t.Fatalf("3 replicas on 3 empty nodes should spread, got %v", p.Nodes())
	}
	// Adding a workload and scaling keeps existing replicas where they are.
	in2 := in
	in2.Workloads = []manifest.Workload{wl("web", 4), wl("api", 2)}
	in2.Current = out.Placements
	out2 := Schedule(in2)
	p2 := out2.Placements[in.Workloads[0].Ref]
	for i := 0; i < 3; i++ {
		if p2.Replicas[i].Node != p.Replicas[i].Node {
			t.Fatalf("replica %d moved from %s to %s", i, p.Replicas[i].Node, p2.Replicas[i].Node)
		}
	}
	if len(p2.Replicas) != 4 || p2.Replicas[3].Node == "" {
		t.Fatalf("scale up to 4 not placed: %+v", p2.Replicas)
	}
}

func TestScheduleFilters(t *testing.T) {
	withSelector := func(w *manifest.Workload) { w.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} }
	withMem := func(q string) func(*manifest.Workload) {
		return func(w *manifest.Workload) {
			w.Template.Spec.Containers[0].Resources.Requests = manifest.ResourceList{"memory": resource.MustParse(q)}
		}
	}
	withSidecarPort := func(w *manifest.Workload) {
		w.Template.Spec.InitContainers = []manifest.Container{{Name: "proxy", Image: "busybox", RestartPolicy: "Always",
			Ports: []manifest.ContainerPort{{ContainerPort: 15001, HostPort: 8081}}}}
	}
	withInitMem := func(q string) func(*manifest.Workload) {
		return func(w *manifest.Workload) {
			w.Template.Spec.InitContainers = []manifest.Container{{Name: "migrate", Image: "busybox",
				Resources: manifest.ResourceRequirements{Requests: manifest.ResourceList{"memory": resource.MustParse(q)}}}}
		}
	}
	withHostPort := func(w *manifest.Workload) {
		w.Template.Spec.Containers[0].Ports = []manifest.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
	}
	cases := []struct {
		name    string
		w       manifest.Workload
		nodes   []Node
		want    []string
		pending string
	}{
		{"no nodes", wl("x", 1), nil, []string{""}, ReasonNoNodes},
		{"dead node", wl("x", 1), []Node{node("a", func(n *Node) { n.Alive = false })}, []string{""}, ReasonNotAlive},
		{"cordoned", wl("x", 1), []Node{node("a", func(n *Node) { n.Unschedulable = true }), node("b")}, []string{"b"}, ""},
		{"selector", wl("x", 1, withSelector), []Node{node("a"), node("b", func(n *Node) { n.Labels["disk"] = "ssd" })}, []string{"b"}, ""},
		{"selector none", wl("x", 1, withSelector), []Node{node("a")}, []string{""}, ReasonNodeSelector},
		{"taint", wl("x", 1), []Node{node("a", func(n *Node) { n.Taints = []manifest.Taint{{Key: "k", Effect: "NoSchedule"}} })}, []string{""}, "1 node(s): untolerated taint k="},
		{"memory", wl("x", 2, withMem("600Mi")), []Node{node("a", func(n *Node) { n.Allocatable = map[string]resource.Quantity{"memory": resource.MustParse("1Gi")} })}, []string{"a", ""}, "1 node(s): insufficient memory"},
		{"host port", wl("x", 2, withHostPort), []Node{node("a")}, []string{"a", ""}, ReasonHostPort},
		{"sidecar host port", wl("x", 2, withSidecarPort), []Node{node("a")}, []string{"a", ""}, ReasonHostPort},
		{"init container requests", wl("x", 2, withInitMem("600Mi")), []Node{node("a", func(n *Node) { n.Allocatable = map[string]resource.Quantity{"memory": resource.MustParse("1Gi")} })}, []string{"a", ""}, "1 node(s): insufficient memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := Schedule(Input{Workloads: []manifest.Workload{tc.w}, Nodes: tc.nodes})
			p := out.Placements[tc.w.Ref]
			if got := p.Nodes(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("nodes = %q, want %q", got, tc.want)
			}
			if tc.pending != "" {
				last := p.Replicas[len(p.Replicas)-1]
				if !strings.Contains(strings.Join(last.Pending, ";"), tc.pending) {
					t.Fatalf("pending reasons %q do not say %q", last.Pending, tc.pending)
				}
			}
		})
	}
}

func TestDaemonSetOnePerFeasibleNode(t *testing.T) {
	ds := wl("agent", 0, func(w *manifest.Workload) { w.Ref.Kind = "DaemonSet"; w.PerNode = true })
	nodes := []Node{node("a"), node("b", func(n *Node) { n.Unschedulable = true }), node("c")}
	out := Schedule(Input{Workloads: []manifest.Workload{ds}, Nodes: nodes})
	if got := out.Placements[ds.Ref].Nodes(); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("daemonset on %v, want [a c]", got)
	}
}

// Properties: the same input gives the same output; every placed replica
// is on an alive node; existing valid bindings never move; one workload's
// change never moves another's replicas.
func TestScheduleProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nn := rapid.IntRange(0, 6).Draw(t, "nodes")
		var nodes []Node
		for i := 0; i < nn; i++ {
			alive := rapid.Bool().Draw(t, fmt.Sprintf("alive%d", i))
			nodes = append(nodes, node(fmt.Sprintf("n%d", i), func(n *Node) { n.Alive = alive }))
		}
		nw := rapid.IntRange(1, 5).Draw(t, "workloads")
		var ws []manifest.Workload
		for i := 0; i < nw; i++ {
			ws = append(ws, wl(fmt.Sprintf("w%d", i), rapid.IntRange(0, 8).Draw(t, fmt.Sprintf("r%d", i))))
		}
		in := Input{Workloads: ws, Nodes: nodes}
		a, b := Schedule(in), Schedule(in)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("not deterministic")
		}
		alive := map[string]bool{}
		for _, n := range nodes {
			alive[n.Name] = n.Alive
		}
		for _, p := range a.Placements {
			for _, r := range p.Replicas {
				if r.Node != "" && !alive[r.Node] {
					t.Fatalf("replica on dead node %s", r.Node)
				}
				if r.Node == "" && len(r.Pending) == 0 {
					t.Fatalf("pending replica without reason")
				}
			}
		}
		// Change one workload's replica count; others must not move.
		k := rapid.IntRange(0, nw-1).Draw(t, "changed")
		ws2 := append([]manifest.Workload(nil), ws...)
		ws2[k].Replicas = rapid.IntRange(0, 8).Draw(t, "newReplicas")
		c := Schedule(Input{Workloads: ws2, Nodes: nodes, Current: a.Placements})
		for i, w := range ws {
			if i == k {
				continue
			}
			before, after := a.Placements[w.Ref], c.Placements[w.Ref]
			for j := range before.Replicas {
				if before.Replicas[j].Node != "" && before.Replicas[j].Node != after.Replicas[j].Node {
					t.Fatalf("%s[%d] moved from %s to %s when %s changed", w.Name, j, before.Replicas[j].Node, after.Replicas[j].Node, ws[k].Name)
				}
			}
		}
	})
}

func TestCordonKeepsRunningReplicasNoExecuteEvicts(t *testing.T) {
	w := wl("web", 2)
	in := Input{Workloads: []manifest.Workload{w}, Nodes: []Node{node("a"), node("b")}}
	first := Schedule(in)
	in.Current = first.Placements
	in.Nodes = []Node{node("a", func(n *Node) { n.Unschedulable = true }), node("b")}
	if got, want := Schedule(in).Placements[w.Ref].Nodes(), first.Placements[w.Ref].Nodes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("cordon moved replicas: %v -> %v", want, got)
	}
	in.Nodes = []Node{node("a", func(n *Node) { n.Taints = []manifest.Taint{{Key: "k", Effect: "NoExecute"}} }), node("b")}
	if got := Schedule(in).Placements[w.Ref].Nodes(); !reflect.DeepEqual(got, []string{"b", "b"}) {
		t.Fatalf("NoExecute did not drain a: %v", got)
	}
}

// A DaemonSet's replica stays bound to a node that is away, past any
// grace, so that the node keeps its container when it returns; a
// Deployment's moves. A removed node (gone from the list) loses it.
func TestDaemonSetStaysOnAbsentNode(t *testing.T) {
	ds := wl("agent", 0, func(w *manifest.Workload) { w.Ref.Kind = "DaemonSet"; w.PerNode = true })
	web := wl("web", 1)
	nodes := []Node{node("a"), node("b")}
	out := Schedule(Input{Workloads: []manifest.Workload{ds, web}, Nodes: nodes})
	webNode := out.Placements[web.Ref].Replicas[0].Node
	dead := []Node{node("a"), node("b")}
	for i := range dead {
		if dead[i].Name == webNode {
			dead[i].Alive = false
		}
	}
	next := Schedule(Input{Workloads: []manifest.Workload{ds, web}, Nodes: dead, Current: out.Placements})
	if !reflect.DeepEqual(next.Placements[ds.Ref].Replicas, out.Placements[ds.Ref].Replicas) {
		t.Fatalf("daemonset moved while %s was away: %+v -> %+v", webNode, out.Placements[ds.Ref].Replicas, next.Placements[ds.Ref].Replicas)
	}
	if n := next.Placements[web.Ref].Replicas[0].Node; n == webNode {
		t.Fatalf("deployment replica stayed on dead node %s", n)
	}
	var left []Node
	for _, n := range dead {
		if n.Name != webNode {
			left = append(left, n)
		}
	}
	gone := Schedule(Input{Workloads: []manifest.Workload{ds, web}, Nodes: left, Current: next.Placements})
	if got := gone.Placements[ds.Ref].Nodes(); len(got) != 1 || got[0] == webNode {
		t.Fatalf("daemonset on a removed node: %v", got)
	}
}
