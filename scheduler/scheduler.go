package scheduler

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

// Node is what the scheduler knows of one node: inventory from gossip or the
// agent itself, merged with the node's policy from the desired commit.
type Node struct {
	Name          string
	Labels        map[string]string
	Alive         bool
	Unschedulable bool
	Taints        []manifest.Taint
	// Allocatable resources; a missing resource means unlimited.
	Allocatable map[string]resource.Quantity
}

// Input is everything one scheduling pass reads. Nothing else is consulted,
// so the same Input always yields the same Output.
type Input struct {
	DesiredCommit string
	Workloads     []manifest.Workload
	Nodes         []Node
	// Current placements, as committed on the status branch.
	Current map[manifest.Ref]manifest.Placement
}

// Output holds the placements every workload of Input should have. A
// workload absent from Workloads has no placement.
type Output struct {
	Placements map[manifest.Ref]manifest.Placement
}

// Constant rejection reasons, so that status and plan can say why a replica
// is pending.
const (
	ReasonNoNodes       = "no nodes"
	ReasonNotAlive      = "not alive"
	ReasonUnschedulable = "unschedulable"
	ReasonNodeSelector  = "didn't match nodeSelector"
	ReasonTaint         = "untolerated taint"
	ReasonResources     = "insufficient"
	ReasonHostPort      = "host port in use"
)

// Schedule computes placements. It is pure: no I/O, no clocks, no global
// randomness. Replicas stay on their node while it is alive and they still
// fit; a change to one workload never moves another, because workloads are
// placed in a fixed order and existing bindings are reserved first.
func Schedule(in Input) Output {
	nodes := append([]Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	ws := append([]manifest.Workload(nil), in.Workloads...)
	sort.Slice(ws, func(i, j int) bool { return refLess(ws[i].Ref, ws[j].Ref) })

	st := newState(nodes)
	out := Output{Placements: make(map[manifest.Ref]manifest.Placement, len(ws))}

	// Pass 1: keep every existing binding that is still valid, reserving its
	// resources, so that stability does not depend on workload order.
	kept := make(map[manifest.Ref]map[int]string)
	for _, w := range ws {
		cur, ok := in.Current[w.Ref]
		if !ok {
			continue
		}
		want := wantedIndexes(w)
		for _, r := range cur.Replicas {
			if r.Node == "" || !w.PerNode && !want[r.Index] {
				continue
			}
			n := st.node(r.Node)
			if n == nil || len(st.evict(n, w)) > 0 {
				continue
			}
			if w.PerNode && kept[w.Ref] != nil && containsValue(kept[w.Ref], r.Node) {
				continue
			}
			st.reserve(n, w)
			if kept[w.Ref] == nil {
				kept[w.Ref] = make(map[int]string)
			}
			kept[w.Ref][r.Index] = r.Node
		}
	}

	// Pass 2: place what is not bound.
	for _, w := range ws {
		p := manifest.Placement{Workload: w.Ref, DesiredCommit: in.DesiredCommit, SpecHash: w.SpecHash}
		prev := in.Current[w.Ref]
		if w.PerNode {
			p.Replicas = st.placePerNode(w, kept[w.Ref])
		} else {
			p.Replicas = st.placeReplicas(w, kept[w.Ref])
		}
		for i := range p.Replicas {
			p.Replicas[i].SpecHash = w.SpecHash
			p.Replicas[i].Status = carryStatus(prev, p.Replicas[i])
		}
		out.Placements[w.Ref] = p
	}
	return out
}

// carryStatus keeps the observed status of a replica that stays bound to the
// same node with the same spec; anything else starts unobserved.
func carryStatus(prev manifest.Placement, r manifest.ReplicaPlacement) *manifest.ReplicaStatus {
	for _, o := range prev.Replicas {
		if o.Index == r.Index && o.Node == r.Node && o.Node != "" && o.SpecHash == r.SpecHash {
			return o.Status
		}
	}
	return nil
}

// replicaIndexes are the indexes of the replicas to place: w.Indexes when
// set (a Job's active replicas), else 0..Replicas-1.
func replicaIndexes(w manifest.Workload) []int {
	if w.Indexes != nil {
		return w.Indexes
	}
	out := make([]int, w.Replicas)
	for i := range out {
		out[i] = i
	}
	return out
}

func wantedIndexes(w manifest.Workload) map[int]bool {
	if w.PerNode {
		return nil
	}
	m := map[int]bool{}
	for _, i := range replicaIndexes(w) {
		m[i] = true
	}
	return m
}

func containsValue(m map[int]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

func refLess(a, b manifest.Ref) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}

// state tracks what is placed on each node during one pass.
type state struct {
	nodes []Node
	byID  map[string]int
	used  []map[string]resource.Quantity
	ports []map[string]bool
	count []int
}

func newState(nodes []Node) *state {
	s := &state{nodes: nodes, byID: make(map[string]int, len(nodes))}
	for i, n := range nodes {
		s.byID[n.Name] = i
		s.used = append(s.used, map[string]resource.Quantity{})
		s.ports = append(s.ports, map[string]bool{})
		s.count = append(s.count, 0)
	}
	return s
}

func (s *state) node(name string) *Node {
	i, ok := s.byID[name]
	if !ok {
		return nil
	}
	return &s.nodes[i]
}

// evict returns why a replica already bound to n must leave it. Like
// Kubernetes, a cordon (unschedulable) or a NoSchedule taint keeps what
// runs; a dead node, a NoExecute taint or a replica that no longer fits
// do not.
func (s *state) evict(n *Node, w manifest.Workload) []string {
	if !n.Alive {
		return []string{ReasonNotAlive}
	}
	for k, v := range w.Template.Spec.NodeSelector {
		if n.Labels[k] != v {
			return []string{ReasonNodeSelector}
		}
	}
	for _, t := range n.Taints {
		if t.Effect == "NoExecute" {
			return []string{ReasonTaint}
		}
	}
	return s.capacity(n, w)
}

// reject returns the reasons the node cannot take one more replica of w,
// cheapest filters first; none means it fits.
func (s *state) reject(n *Node, w manifest.Workload) []string {
	if !n.Alive {
		return []string{ReasonNotAlive}
	}
	if n.Unschedulable {
		return []string{ReasonUnschedulable}
	}
	for k, v := range w.Template.Spec.NodeSelector {
		if n.Labels[k] != v {
			return []string{ReasonNodeSelector}
		}
	}
	for _, t := range n.Taints {
		// Tolerations are not part of the supported pod spec yet, so
		// every NoSchedule/NoExecute taint repels.
		if t.Effect == "NoSchedule" || t.Effect == "NoExecute" {
			return []string{fmt.Sprintf("%s %s=%s", ReasonTaint, t.Key, t.Value)}
		}
	}
	return s.capacity(n, w)
}

// capacity checks host ports and resources against what is placed.
func (s *state) capacity(n *Node, w manifest.Workload) []string {
	i := s.byID[n.Name]
	for _, port := range hostPorts(w) {
		if s.ports[i][port] {
			return []string{ReasonHostPort}
		}
	}
	for name, req := range requests(w) {
		alloc, ok := n.Allocatable[name]
		if !ok {
			continue
		}
		u := s.used[i][name]
		u.Add(req)
		if u.Cmp(alloc) > 0 {
			return []string{fmt.Sprintf("%s %s", ReasonResources, name)}
		}
	}
	return nil
}

func (s *state) reserve(n *Node, w manifest.Workload) {
	i := s.byID[n.Name]
	for name, req := range requests(w) {
		u := s.used[i][name]
		u.Add(req)
		s.used[i][name] = u
	}
	for _, port := range hostPorts(w) {
		s.ports[i][port] = true
	}
	s.count[i]++
}

// score prefers the least allocated node (spread), measured by the largest
// fraction of any allocatable resource in use, then by replica count.
func (s *state) score(n *Node) float64 {
	i := s.byID[n.Name]
	worst := 0.0
	for name, alloc := range n.Allocatable {
		if alloc.IsZero() {
			continue
		}
		u := s.used[i][name]
		f := float64(u.MilliValue()) / float64(alloc.MilliValue())
		if f > worst {
			worst = f
		}
	}
	// Replica count breaks ties between equally allocated nodes, so that
	// replicas without requests still spread.
	return 1 - worst - float64(s.count[i])*1e-6
}

func (s *state) placeReplicas(w manifest.Workload, kept map[int]string) []manifest.ReplicaPlacement {
	idxs := replicaIndexes(w)
	out := make([]manifest.ReplicaPlacement, 0, len(idxs))
	for _, idx := range idxs {
		if node, ok := kept[idx]; ok {
			out = append(out, manifest.ReplicaPlacement{Index: idx, Node: node})
			continue
		}
		best, reasons := s.pick(w, idx)
		if best == nil {
			out = append(out, manifest.ReplicaPlacement{Index: idx, Pending: reasons})
			continue
		}
		s.reserve(best, w)
		out = append(out, manifest.ReplicaPlacement{Index: idx, Node: best.Name})
	}
	return out
}

// pick returns the best feasible node, or the sorted distinct reasons every
// node gave.
func (s *state) pick(w manifest.Workload, idx int) (*Node, []string) {
	if len(s.nodes) == 0 {
		return nil, []string{ReasonNoNodes}
	}
	var best *Node
	bestScore := -1.0
	var bestTie uint64
	seen := map[string]int{}
	for i := range s.nodes {
		n := &s.nodes[i]
		if r := s.reject(n, w); len(r) > 0 {
			for _, x := range r {
				seen[x]++
			}
			continue
		}
		sc := s.score(n)
		tie := tieBreak(w.Ref, idx, n.Name)
		if sc > bestScore || (sc == bestScore && tie < bestTie) {
			best, bestScore, bestTie = n, sc, tie
		}
	}
	if best != nil {
		return best, nil
	}
	reasons := make([]string, 0, len(seen))
	for r, c := range seen {
		reasons = append(reasons, fmt.Sprintf("%d node(s): %s", c, r))
	}
	sort.Strings(reasons)
	return nil, reasons
}

// placePerNode places one replica on every feasible node (DaemonSet). The
// replica index is the node's position in name order, so it is stable while
// the set of nodes is.
func (s *state) placePerNode(w manifest.Workload, kept map[int]string) []manifest.ReplicaPlacement {
	var out []manifest.ReplicaPlacement
	onNode := map[string]int{}
	for idx, n := range kept {
		onNode[n] = idx
	}
	used := map[int]bool{}
	for _, idx := range onNode {
		used[idx] = true
	}
	next := 0
	for i := range s.nodes {
		n := &s.nodes[i]
		if idx, ok := onNode[n.Name]; ok {
			out = append(out, manifest.ReplicaPlacement{Index: idx, Node: n.Name})
			continue
		}
		if len(s.reject(n, w)) > 0 {
			continue
		}
		for used[next] {
			next++
		}
		used[next] = true
		s.reserve(n, w)
		out = append(out, manifest.ReplicaPlacement{Index: next, Node: n.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

func tieBreak(ref manifest.Ref, idx int, node string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%s", ref, idx, node)
	return h.Sum64()
}

// requests sums the resource requests of the replica's containers, using
// limits where requests are unset, as Kubernetes defaults them.
func requests(w manifest.Workload) map[string]resource.Quantity {
	sum := map[string]resource.Quantity{}
	for _, c := range w.Template.Spec.Containers {
		names := map[string]bool{}
		for k := range c.Resources.Requests {
			names[k] = true
		}
		for k := range c.Resources.Limits {
			names[k] = true
		}
		for k := range names {
			q, ok := c.Resources.Requests[k]
			if !ok {
				q = c.Resources.Limits[k]
			}
			t := sum[k]
			t.Add(q)
			sum[k] = t
		}
	}
	return sum
}

func hostPorts(w manifest.Workload) []string {
	var out []string
	for _, c := range w.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = "TCP"
			}
			out = append(out, fmt.Sprintf("%s/%s:%d", strings.ToUpper(proto), p.HostIP, p.HostPort))
		}
	}
	return out
}
