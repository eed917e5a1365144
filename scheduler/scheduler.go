package scheduler

import (
	"fmt"
	"sort"
	"time"

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
	// Draining evicts every replica but DaemonSets', as far as the
	// PodDisruptionBudgets allow (a Node policy's driftless.dev/drain).
	Draining bool
	Taints   []manifest.Taint
	// Allocatable resources; a missing resource means unlimited.
	Allocatable map[string]resource.Quantity
}

// Policy is how the resource scorer ranks nodes.
type Policy string

const (
	// LeastAllocated prefers the node with the most free resources:
	// replicas spread, a node failure hits few of them. The default.
	LeastAllocated Policy = "least-allocated"
	// MostAllocated prefers the fullest node that still fits: replicas
	// pack, leaving whole nodes free for large replicas or to power off.
	MostAllocated Policy = "most-allocated"
)

// ParsePolicy reads a policy name; empty is LeastAllocated.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "", LeastAllocated:
		return LeastAllocated, nil
	case MostAllocated:
		return MostAllocated, nil
	}
	return "", fmt.Errorf("scheduler policy %q: must be %s or %s", s, LeastAllocated, MostAllocated)
}

// Input is everything one scheduling pass reads. Nothing else is consulted,
// so the same Input always yields the same Output.
type Input struct {
	DesiredCommit string
	Workloads     []manifest.Workload
	Nodes         []Node
	// Current placements, as committed on the status branch.
	Current map[manifest.Ref]manifest.Placement
	// Policy ranks nodes by their allocation; empty is LeastAllocated.
	Policy Policy
	// PercentageOfNodesToScore bounds, as in kube-scheduler, how many
	// feasible nodes are scored per replica: 0 adapts it to the cluster
	// size (all nodes below 100, 10% of 5,000, never under 5% or 100
	// nodes), 100 scores every feasible node.
	PercentageOfNodesToScore int
	// Now is the leader's clock, read by rollouts (minReadySeconds,
	// progressDeadlineSeconds) and stamped as a replica's ReadySince.
	Now time.Time
	// Requests say, per workload, which replica indexes to place and
	// which keep their old template (the rollout and Job controllers'
	// decisions); a workload without one places 0..Replicas-1.
	Requests map[manifest.Ref]Request
	// ClaimNodes are the nodes that hold node-local claims
	// ("namespace/name" → node): a replica mounting one is placed there
	// only, as Kubernetes does for local volumes.
	ClaimNodes map[string]string
	// Budgets are the PodDisruptionBudgets voluntary evictions (drains,
	// NoExecute taints, preemption) honour.
	Budgets []manifest.Budget
	// Frozen workloads (suspended) keep their current placement exactly:
	// every replica where it is, with its template, commit and status.
	Frozen map[manifest.Ref]bool
	// VolumesUsed is, per node, the size of the node-local claims bound
	// there: with the node's allocatable ResourceVolumes, what a new
	// claim may still take.
	VolumesUsed map[string]int64
}

// ResourceVolumes is the node resource of claims: the size of the file
// system of its volumes directory.
const ResourceVolumes = "volumes"

// Request is what a controller asks of the scheduler for one workload.
type Request struct {
	// Indexes are the replica indexes to place (nil: 0..Replicas-1; a
	// DaemonSet's follow the nodes).
	Indexes []int
	// Hold are the old replicas that keep their template where they run.
	Hold map[int]manifest.Revision
	// TrackReady stamps each replica's ReadySince (minReadySeconds).
	TrackReady bool
}

// Claims is what a pass decided of claims: the node-local claims bound
// by the replicas placed (first use: "namespace/name" → node) and the
// claims on shared storage in use.
type Claims struct {
	Bound  map[string]string
	Shared map[string]bool
	// Users names the workload whose replica bound or used each claim.
	Users map[string]manifest.Ref
}

// Output holds the placements every workload of Input should have. A
// workload absent from Workloads has no placement.
type Output struct {
	Placements map[manifest.Ref]manifest.Placement
	// Claims bound or used by this pass.
	Claims Claims
}

// Constant rejection reasons, so that status and plan can say why a replica
// is pending.
const (
	ReasonNoNodes         = "no nodes"
	ReasonNotAlive        = "not alive"
	ReasonUnschedulable   = "unschedulable"
	ReasonNodeSelector    = "didn't match nodeSelector"
	ReasonNodeAffinity    = "didn't match node affinity"
	ReasonTaint           = "untolerated taint"
	ReasonHostPort        = "host port in use"
	ReasonResources       = "insufficient"
	ReasonPodAffinity     = "didn't match pod affinity rules"
	ReasonPodAntiAffinity = "didn't match pod anti-affinity rules"
	ReasonTopologySpread  = "didn't match pod topology spread constraints"
	ReasonOS              = "the pod's spec.os is not the node's (linux)"
)

// Schedule computes placements. It is pure: no I/O, no clocks, no global
// randomness. Replicas stay on their node while it is alive, no NoExecute
// taint they do not tolerate is on it and they still fit; a change to one
// workload never moves another, because existing bindings are reserved
// before anything new is placed.
func Schedule(in Input) Output {
	s := newSched(in)
	for _, w := range s.ws {
		if r, ok := in.Requests[w.w.Ref]; ok && !w.w.PerNode {
			w.indexes = r.Indexes
		}
	}
	out := Output{Placements: make(map[manifest.Ref]manifest.Placement, len(s.ws))}

	// Pass 1: keep every existing binding that is still valid, reserving its
	// resources, so that stability does not depend on workload order.
	kept := make([]map[int]int32, len(s.ws))
	s.kept = kept
	s.initBudgets(in)
	for wi, w := range s.ws {
		cur, ok := in.Current[w.w.Ref]
		if !ok {
			continue
		}
		if in.Frozen[w.w.Ref] {
			kept[wi] = s.freeze(w, cur)
			continue
		}
		kept[wi] = s.keep(w, cur, in.Requests[w.w.Ref].Hold)
	}

	// Pass 2: place what is not bound, DaemonSets first: they carry what
	// a node needs to serve, so others must not take their room; then by
	// priority.
	order := make([]int, 0, len(s.ws))
	for wi, w := range s.ws {
		if w.w.PerNode {
			order = append(order, wi)
		}
	}
	n := len(order)
	for wi, w := range s.ws {
		if !w.w.PerNode {
			order = append(order, wi)
		}
	}
	// Then higher priorities first (PriorityClass), as kube-scheduler's
	// queue orders pods.
	rest := order[n:]
	sort.SliceStable(rest, func(a, b int) bool { return s.ws[rest[a]].w.Priority > s.ws[rest[b]].w.Priority })
	for _, wi := range order {
		w := s.ws[wi]
		if in.Frozen[w.w.Ref] {
			s.done[wi] = true
			if cur, ok := in.Current[w.w.Ref]; ok {
				cur.Suspended = true
				out.Placements[w.w.Ref] = cur
			}
			continue
		}
		p := manifest.Placement{Workload: w.w.Ref, DesiredCommit: in.DesiredCommit, SpecHash: w.w.SpecHash}
		if w.w.PerNode {
			p.Replicas = s.placePerNode(w, kept[wi])
		} else {
			p.Replicas = s.placeReplicas(w, kept[wi])
			s.done[wi] = true
		}
		prev := map[int]manifest.ReplicaPlacement{}
		for _, r := range in.Current[w.w.Ref].Replicas {
			prev[r.Index] = r
		}
		st := in.Requests[w.w.Ref]
		rolling := st.TrackReady
		for i := range p.Replicas {
			r := &p.Replicas[i]
			r.SpecHash = w.w.SpecHash
			o, had := prev[r.Index]
			if h, ok := st.Hold[r.Index]; ok && had && o.Node == r.Node && r.Node != "" {
				r.SpecHash = h.SpecHash
				if h.Commit != in.DesiredCommit {
					r.DesiredCommit = h.Commit
				}
			}
			// The observed status of a replica that stays bound to the
			// same node with the same spec is kept.
			if had && o.Node == r.Node && o.Node != "" && o.SpecHash == r.SpecHash {
				r.Status = o.Status
				if rolling && r.Status != nil && r.Status.Ready {
					r.ReadySince = o.ReadySince
					if r.ReadySince == nil && !in.Now.IsZero() {
						t := in.Now.UTC()
						r.ReadySince = &t
					}
				}
			}
		}
		s.noteDisruptions(w, p.Replicas)
		out.Placements[w.w.Ref] = p
	}
	out.Claims = s.claims
	return out
}

// keep reserves the bindings of cur that stay valid and returns them by
// replica index.
func (s *sched) keep(w *cworkload, cur manifest.Placement, hold map[int]manifest.Revision) map[int]int32 {
	kept := map[int]int32{}
	want := wantedIndexes(w)
	var onNode map[int32]bool
	if w.w.PerNode {
		onNode = map[int32]bool{}
	}
	for _, r := range cur.Replicas {
		if r.Node == "" || (!w.w.PerNode && !want[r.Index]) {
			continue
		}
		i, ok := s.byName[r.Node]
		// A DaemonSet's replica stays on its node while the node is
		// away, however long (Kubernetes' DaemonSet pods tolerate
		// node.kubernetes.io/unreachable forever): a node that comes
		// back keeps its containers. It goes when the node is removed.
		if !ok || (!s.nodes[i].Alive && !w.w.PerNode) {
			continue
		}
		if n := w.w.Template.Spec.NodeName; n != "" && n != r.Node {
			continue
		}
		// A voluntary eviction (a NoExecute taint, a drain) takes the
		// replica off only as far as its disruption budgets allow.
		if s.noExecute(w, i) || (s.nodes[i].Draining && !w.w.PerNode) {
			if s.evict(w, r) {
				continue
			}
		}
		if w.w.PerNode && onNode[i] {
			continue
		}
		if _, dup := kept[r.Index]; dup {
			continue
		}
		// An old replica kept by a rollout runs on as it is: it is
		// reserved with the new template's requests, a slight
		// overestimate when they grew, but never moved for it.
		_, held := hold[r.Index]
		// A changed template is a new replica as far as the node is
		// concerned, so it must pass what a new placement would, cordon
		// aside (the replica is replaced where it runs).
		if !held && r.SpecHash != "" && r.SpecHash != w.w.SpecHash && s.staticReject(w, i, true) != "" {
			continue
		}
		if !held && s.capacityReject(w, i) != "" {
			continue
		}
		if !s.claimsAllow(w, r.Index, i) {
			continue
		}
		s.reserve(w, i)
		s.useClaims(w, r.Index, i)
		kept[r.Index] = i
		if onNode != nil {
			onNode[i] = true
		}
	}
	return kept
}

// freeze reserves every bound replica of a suspended workload where it
// is, whatever its node's state: nothing about it changes.
func (s *sched) freeze(w *cworkload, cur manifest.Placement) map[int]int32 {
	kept := map[int]int32{}
	for _, r := range cur.Replicas {
		if i, ok := s.byName[r.Node]; ok && r.Node != "" {
			s.reserve(w, i)
			kept[r.Index] = i
		}
	}
	return kept
}

// noExecute reports whether node i has a NoExecute taint w does not
// tolerate, or tolerates only for tolerationSeconds that have passed: the
// only node change that evicts a running replica.
func (s *sched) noExecute(w *cworkload, i int32) bool {
	for _, t := range s.nodes[i].Taints {
		if t.Effect != "NoExecute" {
			continue
		}
		end, ok := manifest.TolerationEnd(w.w.Template.Spec.Tolerations, t, s.now)
		if !ok || (!end.IsZero() && !s.now.Before(end)) {
			return true
		}
	}
	return false
}

// TaintWake is the earliest time after now at which a replica of
// workloads placed on nodes stops tolerating a NoExecute taint there
// (zero: none): when time alone changes the placements.
func TaintWake(workloads []manifest.Workload, placements map[manifest.Ref]manifest.Placement, nodes []Node, now time.Time) time.Time {
	var wake time.Time
	byName := make(map[string]*Node, len(nodes))
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	for _, w := range workloads {
		seen := map[string]bool{}
		for _, r := range placements[w.Ref].Replicas {
			n := byName[r.Node]
			if n == nil || seen[r.Node] {
				continue
			}
			seen[r.Node] = true
			for _, t := range n.Taints {
				if t.Effect != "NoExecute" {
					continue
				}
				end, ok := manifest.TolerationEnd(w.Template.Spec.Tolerations, t, now)
				if ok && end.After(now) && (wake.IsZero() || end.Before(wake)) {
					wake = end
				}
			}
		}
	}
	return wake
}

// staticReject is the first filter that does not depend on what is
// placed: alive, unschedulable, nodeSelector, node affinity, taints.
func (s *sched) staticReject(w *cworkload, i int32, ignoreCordon bool) string {
	n := &s.nodes[i]
	if !n.Alive {
		return ReasonNotAlive
	}
	if n.Unschedulable && !ignoreCordon {
		return ReasonUnschedulable
	}
	spec := &w.w.Template.Spec
	if spec.OS != nil && spec.OS.Name != "" && spec.OS.Name != "linux" {
		return ReasonOS
	}
	for k, v := range spec.NodeSelector {
		if lv, ok := nodeLabel(n, k); !ok || lv != v {
			return ReasonNodeSelector
		}
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.Required != nil {
		ok := false
		for _, t := range a.NodeAffinity.Required.NodeSelectorTerms {
			if selectorTermMatches(t, n) {
				ok = true
				break
			}
		}
		if !ok {
			return ReasonNodeAffinity
		}
	}
	for _, t := range n.Taints {
		if t.Effect == "NoSchedule" && !tolerated(spec.Tolerations, t) {
			return fmt.Sprintf("%s %s=%s", ReasonTaint, t.Key, t.Value)
		}
		// A NoExecute toleration that has run out would evict the
		// replica as soon as it was placed.
		if t.Effect == "NoExecute" {
			if end, ok := manifest.TolerationEnd(spec.Tolerations, t, s.now); !ok || (!end.IsZero() && !s.now.Before(end)) {
				return fmt.Sprintf("%s %s=%s", ReasonTaint, t.Key, t.Value)
			}
		}
	}
	return ""
}

// sortReasons renders rejection counts as sorted "N node(s): reason".
func sortReasons(seen map[string]int) []string {
	reasons := make([]string, 0, len(seen))
	for r, c := range seen {
		reasons = append(reasons, fmt.Sprintf("%d node(s): %s", c, r))
	}
	sort.Strings(reasons)
	return reasons
}

// replicaIndexes are the indexes of the replicas to place: its request's
// (a Job's active replicas, a rollout's step), else 0..Replicas-1.
func replicaIndexes(w *cworkload) []int {
	if w.indexes != nil {
		return w.indexes
	}
	out := make([]int, w.w.Replicas)
	for i := range out {
		out[i] = i
	}
	return out
}

func wantedIndexes(w *cworkload) map[int]bool {
	if w.w.PerNode {
		return nil
	}
	m := map[int]bool{}
	for _, i := range replicaIndexes(w) {
		m[i] = true
	}
	return m
}
