package scheduler

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

func labels(kv ...string) func(*Node) {
	return func(n *Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func taint(key, value, effect string) func(*Node) {
	return func(n *Node) { n.Taints = append(n.Taints, manifest.Taint{Key: key, Value: value, Effect: effect}) }
}

func withLabels(kv ...string) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		w.Template.Metadata.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			w.Template.Metadata.Labels[kv[i]] = kv[i+1]
		}
	}
}

func tolerate(ts ...manifest.Toleration) func(*manifest.Workload) {
	return func(w *manifest.Workload) { w.Template.Spec.Tolerations = ts }
}

func nodeAffinity(exprs ...manifest.NodeSelectorRequirement) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		w.Template.Spec.Affinity = &manifest.Affinity{NodeAffinity: &manifest.NodeAffinity{
			Required: &manifest.NodeSelector{NodeSelectorTerms: []manifest.NodeSelectorTerm{{MatchExpressions: exprs}}}}}
	}
}

func matchFields(op, name string) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		w.Template.Spec.Affinity = &manifest.Affinity{NodeAffinity: &manifest.NodeAffinity{
			Required: &manifest.NodeSelector{NodeSelectorTerms: []manifest.NodeSelectorTerm{{MatchFields: []manifest.NodeSelectorRequirement{{Key: "metadata.name", Operator: op, Values: []string{name}}}}}}}}
	}
}

func antiAffinity(key string, kv ...string) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		sel := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			sel[kv[i]] = kv[i+1]
		}
		if w.Template.Spec.Affinity == nil {
			w.Template.Spec.Affinity = &manifest.Affinity{}
		}
		w.Template.Spec.Affinity.PodAntiAffinity = &manifest.PodAffinity{Required: []manifest.PodAffinityTerm{{LabelSelector: &manifest.LabelSelector{MatchLabels: sel}, TopologyKey: key}}}
	}
}

func podAffinity(key string, kv ...string) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		sel := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			sel[kv[i]] = kv[i+1]
		}
		if w.Template.Spec.Affinity == nil {
			w.Template.Spec.Affinity = &manifest.Affinity{}
		}
		w.Template.Spec.Affinity.PodAffinity = &manifest.PodAffinity{Required: []manifest.PodAffinityTerm{{LabelSelector: &manifest.LabelSelector{MatchLabels: sel}, TopologyKey: key}}}
	}
}

func spread(key, when string, skew int32, kv ...string) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		sel := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			sel[kv[i]] = kv[i+1]
		}
		w.Template.Spec.TopologySpreadConstraints = append(w.Template.Spec.TopologySpreadConstraints, manifest.TopologySpreadConstraint{
			MaxSkew: skew, TopologyKey: key, WhenUnsatisfiable: when, LabelSelector: &manifest.LabelSelector{MatchLabels: sel}})
	}
}

func withReq(cpu, mem string) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		w.Template.Spec.Containers[0].Resources.Requests = manifest.ResourceList{}
		if cpu != "" {
			w.Template.Spec.Containers[0].Resources.Requests["cpu"] = resource.MustParse(cpu)
		}
		if mem != "" {
			w.Template.Spec.Containers[0].Resources.Requests["memory"] = resource.MustParse(mem)
		}
	}
}

func alloc(cpu, mem string) func(*Node) {
	return func(n *Node) {
		n.Allocatable = map[string]resource.Quantity{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem)}
	}
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

// One table per filter: which nodes a workload lands on, and the exact
// pending reasons when none fits.
func TestFilters(t *testing.T) {
	in := func(op string, vals ...string) manifest.NodeSelectorRequirement {
		return manifest.NodeSelectorRequirement{Key: "cores", Operator: op, Values: vals}
	}
	cores := func(c string) func(*Node) { return labels("cores", c) }
	cases := []struct {
		name    string
		w       manifest.Workload
		nodes   []Node
		want    []string // sorted nodes of the placed replicas ("" pending)
		pending []string
	}{
		{"affinity In", wl("x", 1, nodeAffinity(in("In", "4", "8"))), []Node{node("a", cores("2")), node("b", cores("8"))}, []string{"b"}, nil},
		{"affinity NotIn", wl("x", 1, nodeAffinity(in("NotIn", "8"))), []Node{node("a"), node("b", cores("8"))}, []string{"a"}, nil},
		{"affinity Exists", wl("x", 1, nodeAffinity(in("Exists"))), []Node{node("a"), node("b", cores("8"))}, []string{"b"}, nil},
		{"affinity DoesNotExist", wl("x", 1, nodeAffinity(in("DoesNotExist"))), []Node{node("a"), node("b", cores("8"))}, []string{"a"}, nil},
		{"affinity Gt", wl("x", 1, nodeAffinity(in("Gt", "8"))), []Node{node("a", cores("8")), node("b", cores("16")), node("c", cores("x"))}, []string{"b"}, nil},
		{"affinity Lt", wl("x", 1, nodeAffinity(in("Lt", "8"))), []Node{node("a", cores("4")), node("b", cores("16")), node("c")}, []string{"a"}, nil},
		{"affinity none", wl("x", 1, nodeAffinity(in("Gt", "64"))), []Node{node("a", cores("4")), node("b")}, []string{""}, []string{"2 node(s): " + ReasonNodeAffinity}},
		{"matchFields In", wl("x", 1, matchFields("In", "b")), []Node{node("a"), node("b"), node("c")}, []string{"b"}, nil},
		{"matchFields NotIn", wl("x", 2, matchFields("NotIn", "b")), []Node{node("a"), node("b"), node("c")}, []string{"a", "c"}, nil},
		{"taint NoSchedule", wl("x", 1), []Node{node("a", taint("k", "v", "NoSchedule"))}, []string{""}, []string{"1 node(s): untolerated taint k=v"}},
		{"tolerate Equal", wl("x", 1, tolerate(manifest.Toleration{Key: "k", Operator: "Equal", Value: "v", Effect: "NoSchedule"})), []Node{node("a", taint("k", "v", "NoSchedule"))}, []string{"a"}, nil},
		{"tolerate wrong value", wl("x", 1, tolerate(manifest.Toleration{Key: "k", Value: "w"})), []Node{node("a", taint("k", "v", "NoSchedule"))}, []string{""}, []string{"1 node(s): untolerated taint k=v"}},
		{"tolerate Exists key", wl("x", 1, tolerate(manifest.Toleration{Key: "k", Operator: "Exists"})), []Node{node("a", taint("k", "v", "NoExecute"))}, []string{"a"}, nil},
		{"tolerate everything", wl("x", 1, tolerate(manifest.Toleration{Operator: "Exists"})), []Node{node("a", taint("k", "v", "NoSchedule"), taint("j", "", "NoExecute"))}, []string{"a"}, nil},
		{"tolerate other effect", wl("x", 1, tolerate(manifest.Toleration{Key: "k", Operator: "Exists", Effect: "NoExecute"})), []Node{node("a", taint("k", "v", "NoSchedule"))}, []string{""}, []string{"1 node(s): untolerated taint k=v"}},
		{"PreferNoSchedule places", wl("x", 1), []Node{node("a", taint("k", "v", "PreferNoSchedule"))}, []string{"a"}, nil},
		{"PreferNoSchedule avoided", wl("x", 1), []Node{node("a", taint("k", "v", "PreferNoSchedule")), node("b")}, []string{"b"}, nil},
		{"anti-affinity per host", wl("zk", 3, withLabels("app", "zk"), antiAffinity(hostnameKey, "app", "zk")), []Node{node("a"), node("b")}, []string{"", "a", "b"}, []string{"2 node(s): " + ReasonPodAntiAffinity}},
		{"anti-affinity per zone", wl("zk", 3, withLabels("app", "zk"), antiAffinity(zoneKey, "app", "zk")),
			[]Node{node("a", labels(zoneKey, "z1")), node("b", labels(zoneKey, "z1")), node("c", labels(zoneKey, "z2"))}, []string{"", "c", "x"}, []string{"3 node(s): " + ReasonPodAntiAffinity}},
		{"spread DoNotSchedule", wl("web", 4, withLabels("app", "web"), spread(zoneKey, "DoNotSchedule", 1, "app", "web")),
			[]Node{node("a", labels(zoneKey, "z1")), node("b", labels(zoneKey, "z1")), node("c", labels(zoneKey, "z2"))}, []string{"c", "c", "x", "x"}, nil},
		{"spread missing key", wl("web", 1, withLabels("app", "web"), spread(zoneKey, "DoNotSchedule", 1, "app", "web")), []Node{node("a")}, []string{""}, []string{"1 node(s): " + ReasonTopologySpread}},
		{"resources", wl("x", 3, withReq("1", "1Gi")), []Node{node("a", alloc("2", "8Gi")), node("b", alloc("8", "512Mi"))}, []string{"", "a", "a"},
			[]string{"1 node(s): insufficient memory", "1 node(s): insufficient cpu"}},
		{"mixed reasons", wl("x", 1, withReq("", "1Gi")), []Node{node("a", alloc("1", "512Mi")), node("b", alloc("1", "512Mi")), node("c", alloc("1", "512Mi")), node("d", taint("k", "v", "NoSchedule"))}, []string{""},
			[]string{"1 node(s): untolerated taint k=v", "3 node(s): insufficient memory"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := Schedule(Input{Workloads: []manifest.Workload{tc.w}, Nodes: tc.nodes})
			p := out.Placements[tc.w.Ref]
			got := sorted(p.Nodes())
			want := sorted(tc.want)
			// "x" in want stands for "either of the nodes not named".
			if !reflect.DeepEqual(got, want) && !xMatch(got, want, tc.nodes) {
				t.Fatalf("nodes = %q, want %q", got, want)
			}
			if tc.pending != nil {
				var last []string
				for _, r := range p.Replicas {
					if r.Node == "" {
						last = r.Pending
					}
				}
				if !reflect.DeepEqual(sorted(last), sorted(tc.pending)) {
					t.Fatalf("pending = %q, want %q", last, tc.pending)
				}
			}
		})
	}
}

// xMatch accepts want entries "x" as any node of the ones want does not
// otherwise name, each used at most once per node.
func xMatch(got, want []string, nodes []Node) bool {
	if len(got) != len(want) {
		return false
	}
	named := map[string]int{}
	xs := 0
	for _, w := range want {
		if w == "x" {
			xs++
		} else {
			named[w]++
		}
	}
	others := map[string]int{}
	for _, g := range got {
		if named[g] > 0 {
			named[g]--
			continue
		}
		if g == "" {
			return false
		}
		others[g]++
		xs--
	}
	for _, c := range others {
		if c > 1 {
			return false
		}
	}
	return xs == 0
}

func TestPodAffinityFollowsAndFirstReplicaMayStart(t *testing.T) {
	nodes := []Node{node("a", labels(zoneKey, "z1")), node("b", labels(zoneKey, "z2")), node("c", labels(zoneKey, "z2"))}
	db := wl("db", 1, withLabels("app", "db"), matchFields("In", "c"))
	web := wl("web", 4, withLabels("app", "web"), podAffinity(zoneKey, "app", "db"))
	out := Schedule(Input{Workloads: []manifest.Workload{db, web}, Nodes: nodes})
	for _, n := range out.Placements[web.Ref].Nodes() {
		if n != "b" && n != "c" {
			t.Fatalf("web replica on %q, outside db's zone z2: %v", n, out.Placements[web.Ref].Nodes())
		}
	}
	// Without a db, web cannot place; a workload affine to itself can.
	out = Schedule(Input{Workloads: []manifest.Workload{web}, Nodes: nodes})
	if got := out.Placements[web.Ref].Replicas[0].Pending; !reflect.DeepEqual(got, []string{"3 node(s): " + ReasonPodAffinity}) {
		t.Fatalf("web without db: pending %q", got)
	}
	self := wl("cache", 3, withLabels("app", "cache"), podAffinity(zoneKey, "app", "cache"))
	out = Schedule(Input{Workloads: []manifest.Workload{self}, Nodes: nodes})
	zones := map[string]bool{}
	for _, n := range out.Placements[self.Ref].Nodes() {
		for _, nd := range nodes {
			if nd.Name == n {
				zones[nd.Labels[zoneKey]] = true
			}
		}
	}
	if len(zones) != 1 {
		t.Fatalf("self-affine replicas in zones %v, want one", zones)
	}
}

func TestAntiAffinityIsSymmetric(t *testing.T) {
	// noisy is placed first (name order) and repels quiet; quiet says
	// nothing, yet must keep away.
	noisy := wl("a-noisy", 2, withLabels("app", "noisy"), antiAffinity(hostnameKey, "app", "quiet"))
	quiet := wl("b-quiet", 2, withLabels("app", "quiet"))
	nodes := []Node{node("n1"), node("n2"), node("n3"), node("n4")}
	out := Schedule(Input{Workloads: []manifest.Workload{noisy, quiet}, Nodes: nodes})
	on := map[string]bool{}
	for _, n := range out.Placements[noisy.Ref].Nodes() {
		on[n] = true
	}
	for _, n := range out.Placements[quiet.Ref].Nodes() {
		if n == "" || on[n] {
			t.Fatalf("quiet on %q next to noisy %v", n, on)
		}
	}
}

func TestScorers(t *testing.T) {
	t.Run("least-allocated spreads", func(t *testing.T) {
		w := wl("x", 2, withReq("1", "1Gi"))
		out := Schedule(Input{Workloads: []manifest.Workload{w}, Nodes: []Node{node("a", alloc("4", "4Gi")), node("b", alloc("4", "4Gi"))}})
		if got := sorted(out.Placements[w.Ref].Nodes()); !reflect.DeepEqual(got, []string{"a", "b"}) {
			t.Fatalf("least-allocated: %v", got)
		}
	})
	t.Run("most-allocated packs", func(t *testing.T) {
		filler := wl("a-filler", 1, withReq("2", "2Gi"), matchFields("In", "b"))
		w := wl("x", 3, withReq("500m", "512Mi"))
		nodes := []Node{node("a", alloc("8", "8Gi")), node("b", alloc("8", "8Gi")), node("c", alloc("8", "8Gi"))}
		out := Schedule(Input{Workloads: []manifest.Workload{filler, w}, Nodes: nodes, Policy: MostAllocated})
		if got := out.Placements[w.Ref].Nodes(); !reflect.DeepEqual(got, []string{"b", "b", "b"}) {
			t.Fatalf("most-allocated should pack onto the fuller b: %v", got)
		}
		out = Schedule(Input{Workloads: []manifest.Workload{filler, w}, Nodes: nodes, Policy: LeastAllocated})
		if got := sorted(out.Placements[w.Ref].Nodes()); !reflect.DeepEqual(got, []string{"a", "b", "c"}) && !reflect.DeepEqual(got, []string{"a", "a", "c"}) && !reflect.DeepEqual(got, []string{"a", "c", "c"}) {
			t.Fatalf("least-allocated should avoid b: %v", got)
		}
	})
	t.Run("preferred node affinity", func(t *testing.T) {
		w := wl("x", 1, func(w *manifest.Workload) {
			w.Template.Spec.Affinity = &manifest.Affinity{NodeAffinity: &manifest.NodeAffinity{Preferred: []manifest.PreferredSchedulingTerm{
				{Weight: 1, Preference: manifest.NodeSelectorTerm{MatchExpressions: []manifest.NodeSelectorRequirement{{Key: "disk", Operator: "In", Values: []string{"hdd"}}}}},
				{Weight: 80, Preference: manifest.NodeSelectorTerm{MatchExpressions: []manifest.NodeSelectorRequirement{{Key: "disk", Operator: "In", Values: []string{"ssd"}}}}},
			}}}
		})
		for _, order := range [][]string{{"hdd", "ssd", "none"}, {"ssd", "none", "hdd"}} {
			var nodes []Node
			for i, d := range order {
				nodes = append(nodes, node(fmt.Sprintf("n%d", i), labels("disk", d)))
			}
			out := Schedule(Input{Workloads: []manifest.Workload{w}, Nodes: nodes})
			got := out.Placements[w.Ref].Nodes()[0]
			for _, n := range nodes {
				if n.Name == got && n.Labels["disk"] != "ssd" {
					t.Fatalf("preferred ssd (weight 80), got %s with disk=%s", got, n.Labels["disk"])
				}
			}
		}
	})
	t.Run("preferred pod anti-affinity and affinity", func(t *testing.T) {
		db := wl("a-db", 1, withLabels("app", "db"), matchFields("In", "n2"))
		pref := func(sign int) func(*manifest.Workload) {
			return func(w *manifest.Workload) {
				term := []manifest.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: manifest.PodAffinityTerm{LabelSelector: &manifest.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, TopologyKey: hostnameKey}}}
				if sign > 0 {
					w.Template.Spec.Affinity = &manifest.Affinity{PodAffinity: &manifest.PodAffinity{Preferred: term}}
				} else {
					w.Template.Spec.Affinity = &manifest.Affinity{PodAntiAffinity: &manifest.PodAffinity{Preferred: term}}
				}
			}
		}
		nodes := []Node{node("n1"), node("n2"), node("n3")}
		near := wl("b-near", 1, pref(1))
		far := wl("b-far", 1, pref(-1))
		out := Schedule(Input{Workloads: []manifest.Workload{db, near}, Nodes: nodes})
		if got := out.Placements[near.Ref].Nodes(); got[0] != "n2" {
			t.Fatalf("preferred affinity to db on n2, got %v", got)
		}
		out = Schedule(Input{Workloads: []manifest.Workload{db, far}, Nodes: nodes})
		if got := out.Placements[far.Ref].Nodes(); got[0] == "n2" {
			t.Fatalf("preferred anti-affinity to db on n2, got %v", got)
		}
	})
	t.Run("zone spread by default", func(t *testing.T) {
		w := wl("x", 6)
		var nodes []Node
		for i := 0; i < 6; i++ {
			z := "z1"
			if i == 5 {
				z = "z2"
			}
			nodes = append(nodes, node(fmt.Sprintf("n%d", i), labels(zoneKey, z)))
		}
		// Five nodes in z1, one in z2: zone spreading puts more than one
		// replica in z2, node spreading alone would put exactly one.
		out := Schedule(Input{Workloads: []manifest.Workload{w}, Nodes: nodes})
		inZ2 := 0
		for _, n := range out.Placements[w.Ref].Nodes() {
			if n == "n5" {
				inZ2++
			}
		}
		if inZ2 < 2 {
			t.Fatalf("z2 got %d of 6 replicas: %v", inZ2, out.Placements[w.Ref].Nodes())
		}
	})
	t.Run("ScheduleAnyway spread", func(t *testing.T) {
		w := wl("x", 4, withLabels("app", "x"), spread("rack", "ScheduleAnyway", 1, "app", "x"))
		nodes := []Node{node("a", labels("rack", "r1")), node("b", labels("rack", "r1")), node("c", labels("rack", "r1")), node("d", labels("rack", "r2"))}
		out := Schedule(Input{Workloads: []manifest.Workload{w}, Nodes: nodes})
		onD := 0
		for _, n := range out.Placements[w.Ref].Nodes() {
			if n == "d" {
				onD++
			}
		}
		if onD < 2 {
			t.Fatalf("rack r2 got %d of 4: %v", onD, out.Placements[w.Ref].Nodes())
		}
	})
}

func TestNoExecuteEvictsUnlessTolerated(t *testing.T) {
	tol := wl("tol", 2, tolerate(manifest.Toleration{Key: "k", Operator: "Exists", Effect: "NoExecute"}))
	plain := wl("plain", 2)
	in := Input{Workloads: []manifest.Workload{tol, plain}, Nodes: []Node{node("a"), node("b")}}
	first := Schedule(in)
	in.Current = first.Placements
	in.Nodes = []Node{node("a", taint("k", "v", "NoExecute")), node("b", taint("p", "", "PreferNoSchedule"))}
	next := Schedule(in)
	if got, want := next.Placements[tol.Ref].Nodes(), first.Placements[tol.Ref].Nodes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("tolerated NoExecute moved replicas: %v -> %v", want, got)
	}
	if got := next.Placements[plain.Ref].Nodes(); !reflect.DeepEqual(got, []string{"b", "b"}) {
		t.Fatalf("untolerated NoExecute left replicas: %v", got)
	}
}

func TestRunningReplicasIgnoreLabelChanges(t *testing.T) {
	w := wl("x", 2, nodeAffinity(manifest.NodeSelectorRequirement{Key: "disk", Operator: "In", Values: []string{"ssd"}}),
		func(w *manifest.Workload) { w.Template.Spec.NodeSelector = map[string]string{"tier": "web"} })
	in := Input{Workloads: []manifest.Workload{w}, Nodes: []Node{node("a", labels("disk", "ssd", "tier", "web")), node("b", labels("disk", "ssd", "tier", "web"))}}
	first := Schedule(in)
	in.Current = first.Placements
	in.Nodes = []Node{node("a"), node("b")}
	if got, want := Schedule(in).Placements[w.Ref].Nodes(), first.Placements[w.Ref].Nodes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("IgnoredDuringExecution: %v -> %v", want, got)
	}
	// A new template is scheduled afresh: it no longer fits there.
	w2 := w
	w2.SpecHash = "h-changed"
	in.Workloads = []manifest.Workload{w2}
	for _, r := range Schedule(in).Placements[w.Ref].Replicas {
		if r.Node != "" {
			t.Fatalf("changed template kept on %s without matching labels", r.Node)
		}
	}
}

func TestSampleBoundsScoredNodes(t *testing.T) {
	if got := nodesToFind(5000, 0); got != 500 {
		t.Fatalf("5000 nodes: %d to find, want 500 (10%%)", got)
	}
	if got := nodesToFind(50, 0); got != 50 {
		t.Fatalf("50 nodes: %d, want all", got)
	}
	if got := nodesToFind(10000, 0); got != 500 {
		t.Fatalf("10000 nodes: %d, want 500 (the 5%% floor)", got)
	}
	if got := nodesToFind(1000, 1); got != 100 {
		t.Fatalf("1%% of 1000: %d, want the floor of 100", got)
	}
	if got := nodesToFind(5000, 100); got != 5000 {
		t.Fatalf("100%%: %d", got)
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"": LeastAllocated, "least-allocated": LeastAllocated, "most-allocated": MostAllocated} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Fatalf("ParsePolicy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePolicy("balanced"); err == nil || !strings.Contains(err.Error(), "least-allocated") {
		t.Fatalf("ParsePolicy(balanced) = %v", err)
	}
}
