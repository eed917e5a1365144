package scheduler

import (
	"fmt"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"pgregory.net/rapid"

	"driftless.dev/driftless/manifest"
)

// genCluster draws nodes with zones, sizes, cordons, taints and liveness,
// and workloads with requests, selectors, tolerations, anti-affinity,
// spread constraints and a DaemonSet or two.
func genCluster(t *rapid.T) ([]Node, []manifest.Workload) {
	nn := rapid.IntRange(0, 12).Draw(t, "nodes")
	var nodes []Node
	for i := 0; i < nn; i++ {
		n := node(fmt.Sprintf("n%02d", i))
		n.Alive = rapid.IntRange(0, 9).Draw(t, fmt.Sprintf("alive%d", i)) > 0
		n.Unschedulable = rapid.IntRange(0, 9).Draw(t, fmt.Sprintf("cordon%d", i)) == 0
		if z := rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("zone%d", i)); z > 0 {
			n.Labels[zoneKey] = fmt.Sprintf("z%d", z)
		}
		n.Labels["disk"] = rapid.SampledFrom([]string{"ssd", "hdd"}).Draw(t, fmt.Sprintf("disk%d", i))
		if rapid.Bool().Draw(t, fmt.Sprintf("sized%d", i)) {
			n.Allocatable = map[string]resource.Quantity{
				"cpu":    *resource.NewMilliQuantity(int64(rapid.IntRange(500, 4000).Draw(t, fmt.Sprintf("cpu%d", i))), resource.DecimalSI),
				"memory": *resource.NewQuantity(int64(rapid.IntRange(1, 8).Draw(t, fmt.Sprintf("mem%d", i)))<<30, resource.BinarySI),
			}
		}
		if e := rapid.IntRange(0, 5).Draw(t, fmt.Sprintf("taint%d", i)); e < 3 {
			n.Taints = []manifest.Taint{{Key: "k", Value: "v", Effect: []string{"NoSchedule", "NoExecute", "PreferNoSchedule"}[e]}}
		}
		nodes = append(nodes, n)
	}
	nw := rapid.IntRange(1, 6).Draw(t, "workloads")
	var ws []manifest.Workload
	for i := 0; i < nw; i++ {
		name := fmt.Sprintf("w%d", i)
		w := wl(name, rapid.IntRange(0, 8).Draw(t, "r"+name), withLabels("app", name, "tier", rapid.SampledFrom([]string{"a", "b"}).Draw(t, "tier"+name)))
		if rapid.IntRange(0, 4).Draw(t, "ds"+name) == 0 {
			w.Ref.Kind, w.PerNode = "DaemonSet", true
		}
		if rapid.Bool().Draw(t, "req"+name) {
			withReq(fmt.Sprintf("%dm", rapid.IntRange(100, 2000).Draw(t, "cpu"+name)), fmt.Sprintf("%dMi", rapid.IntRange(128, 4096).Draw(t, "mem"+name)))(&w)
		}
		if rapid.IntRange(0, 3).Draw(t, "sel"+name) == 0 {
			w.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		}
		if rapid.Bool().Draw(t, "tol"+name) {
			w.Template.Spec.Tolerations = []manifest.Toleration{{Key: "k", Operator: "Exists"}}
		}
		switch rapid.IntRange(0, 5).Draw(t, "anti"+name) {
		case 0:
			antiAffinity(hostnameKey, "app", name)(&w)
		case 1:
			antiAffinity(zoneKey, "tier", rapid.SampledFrom([]string{"a", "b"}).Draw(t, "antitier"+name))(&w)
		case 2:
			spread(zoneKey, "DoNotSchedule", 1, "app", name)(&w)
		}
		if rapid.IntRange(0, 4).Draw(t, "port"+name) == 0 {
			w.Template.Spec.Containers[0].Ports = []manifest.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
		}
		ws = append(ws, w)
	}
	return nodes, ws
}

type placedReplica struct {
	w    *manifest.Workload
	node *Node
}

func placedOn(nodes []Node, ws []manifest.Workload, out Output) []placedReplica {
	byName := map[string]*Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	var rs []placedReplica
	for i := range ws {
		for _, r := range out.Placements[ws[i].Ref].Replicas {
			if r.Node != "" {
				rs = append(rs, placedReplica{&ws[i], byName[r.Node]})
			}
		}
	}
	return rs
}

// checkInvariants holds for every output, kept replicas included: alive
// nodes only (but a DaemonSet's replica already bound to a node that is
// away stays there), no resource or host port over-committed, required
// anti-affinity never violated in either direction, pending replicas say
// why. cur is the input's current placements.
func checkInvariants(t *rapid.T, nodes []Node, ws []manifest.Workload, out Output, cur map[manifest.Ref]manifest.Placement) {
	alive := map[string]bool{}
	for _, n := range nodes {
		alive[n.Name] = n.Alive
	}
	for ref, p := range out.Placements {
		was := map[int]string{}
		for _, r := range cur[ref].Replicas {
			was[r.Index] = r.Node
		}
		for _, r := range p.Replicas {
			if r.Node == "" || alive[r.Node] {
				continue
			}
			if ref.Kind != "DaemonSet" || was[r.Index] != r.Node {
				t.Fatalf("%s[%d] placed on dead or unknown node %s", ref.Name, r.Index, r.Node)
			}
		}
	}
	rs := placedOn(nodes, ws, out)
	used := map[string]map[string]int64{}
	ports := map[string]map[string]bool{}
	for _, r := range rs {
		if r.node == nil {
			t.Fatalf("%s placed on an unknown node", r.w.Name)
		}
		if used[r.node.Name] == nil {
			used[r.node.Name] = map[string]int64{}
			ports[r.node.Name] = map[string]bool{}
		}
		for k, q := range requests(r.w) {
			used[r.node.Name][k] += q
		}
		for _, p := range hostPorts(r.w) {
			key := fmt.Sprint(p)
			if ports[r.node.Name][key] {
				t.Fatalf("host port %v twice on %s", p, r.node.Name)
			}
			ports[r.node.Name][key] = true
		}
	}
	for _, n := range nodes {
		for k, a := range n.Allocatable {
			if used[n.Name][k] > a.MilliValue() {
				t.Fatalf("%s over-committed on %s: %dm of %dm", k, n.Name, used[n.Name][k], a.MilliValue())
			}
		}
	}
	for _, a := range rs {
		aff := a.w.Template.Spec.Affinity
		if aff == nil || aff.PodAntiAffinity == nil {
			continue
		}
		for _, term := range aff.PodAntiAffinity.Required {
			da, ok := nodeLabel(a.node, term.TopologyKey)
			if !ok {
				continue
			}
			for _, b := range rs {
				if a == b || b.w.Namespace != a.w.Namespace || !term.LabelSelector.Matches(b.w.Template.Metadata.Labels) {
					continue
				}
				if db, ok := nodeLabel(b.node, term.TopologyKey); ok && db == da {
					t.Fatalf("anti-affinity of %s (%s) violated by %s: both in %s=%s", a.w.Name, a.node.Name, b.w.Name, term.TopologyKey, da)
				}
			}
		}
	}
	for _, p := range out.Placements {
		for _, r := range p.Replicas {
			if r.Node == "" && len(r.Pending) == 0 {
				t.Fatalf("%s[%d] pending without reason", p.Workload.Name, r.Index)
			}
		}
	}
}

func TestSchedulerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nodes, ws := genCluster(t)
		policy := rapid.SampledFrom([]Policy{LeastAllocated, MostAllocated}).Draw(t, "policy")
		in := Input{DesiredCommit: "c1", Workloads: ws, Nodes: nodes, Policy: policy}
		a := Schedule(in)

		// Determinism, whatever the order of the input lists.
		shuffled := in
		shuffled.Nodes = rapid.Permutation(nodes).Draw(t, "nodeOrder")
		shuffled.Workloads = rapid.Permutation(ws).Draw(t, "workloadOrder")
		if b := Schedule(shuffled); !reflect.DeepEqual(a, b) {
			t.Fatalf("not deterministic")
		}
		checkInvariants(t, nodes, ws, a, nil)

		// Every node that passes a DaemonSet's static filters and where
		// nothing but other DaemonSets competes gets one replica: with no
		// requests and no ports, that is every such node.
		for i := range ws {
			w := &ws[i]
			if !w.PerNode || len(requests(w)) > 0 || len(hostPorts(w)) > 0 || w.Template.Spec.Affinity != nil || len(w.Template.Spec.TopologySpreadConstraints) > 0 || repelled(ws, w) {
				continue
			}
			s := newSched(in)
			cw := s.ws[0]
			for _, c := range s.ws {
				if c.w.Ref == w.Ref {
					cw = c
				}
			}
			on := map[string]int{}
			for _, r := range a.Placements[w.Ref].Replicas {
				on[r.Node]++
			}
			for j := range s.nodes {
				want := 0
				if s.staticReject(cw, int32(j), false) == "" {
					want = 1
				}
				if on[s.nodes[j].Name] != want {
					t.Fatalf("DaemonSet %s has %d replicas on %s, want %d", w.Name, on[s.nodes[j].Name], s.nodes[j].Name, want)
				}
			}
		}

		// Stability: change one workload (replicas, or its template) and
		// kill or cordon a node; every other workload's replica stays
		// unless its node died or grew a NoExecute taint it does not
		// tolerate.
		k := rapid.IntRange(0, len(ws)-1).Draw(t, "changed")
		ws2 := append([]manifest.Workload(nil), ws...)
		ws2[k].Replicas = rapid.IntRange(0, 8).Draw(t, "newReplicas")
		if rapid.Bool().Draw(t, "newSpec") {
			ws2[k].SpecHash += "-2"
		}
		nodes2 := append([]Node(nil), nodes...)
		if len(nodes2) > 0 {
			j := rapid.IntRange(0, len(nodes2)-1).Draw(t, "touched")
			switch rapid.IntRange(0, 2).Draw(t, "how") {
			case 0:
				nodes2[j].Alive = false
			case 1:
				nodes2[j].Unschedulable = true
			case 2:
				nodes2[j].Labels = map[string]string{hostnameKey: nodes2[j].Name}
			}
		}
		c := Schedule(Input{DesiredCommit: "c2", Workloads: ws2, Nodes: nodes2, Current: a.Placements, Policy: policy})
		checkInvariants(t, nodes2, ws2, c, a.Placements)
		alive := map[string]bool{}
		for _, n := range nodes2 {
			alive[n.Name] = n.Alive
		}
		for i, w := range ws {
			if i == k {
				continue
			}
			after := map[int]string{}
			for _, r := range c.Placements[w.Ref].Replicas {
				after[r.Index] = r.Node
			}
			for _, r := range a.Placements[w.Ref].Replicas {
				if r.Node != "" && alive[r.Node] && after[r.Index] != r.Node {
					t.Fatalf("%s[%d] moved from %s to %q when %s changed", w.Name, r.Index, r.Node, after[r.Index], ws[k].Name)
				}
			}
		}
	})
}

// repelled reports whether another workload's required anti-affinity
// selects w's replicas.
func repelled(ws []manifest.Workload, w *manifest.Workload) bool {
	for _, o := range ws {
		if a := o.Template.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
			for _, term := range a.PodAntiAffinity.Required {
				if term.LabelSelector.Matches(w.Template.Metadata.Labels) {
					return true
				}
			}
		}
	}
	return false
}
