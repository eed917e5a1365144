package scheduler

import (
	"fmt"
	"hash/fnv"
	"sort"

	"driftless.dev/driftless/manifest"
)

// capacityReject checks host ports and resources against what is placed
// on node i.
func (s *sched) capacityReject(w *cworkload, i int32) string {
	if len(w.ports) > 0 && s.ports[i] != nil {
		for _, p := range w.ports {
			if portTaken(s.ports[i], p) {
				return ReasonHostPort
			}
		}
	}
	R := len(s.res)
	base := int(i) * R
	for r, q := range w.req {
		if q == 0 {
			continue
		}
		if a := s.alloc[base+r]; a >= 0 && s.used[base+r]+q > a {
			return ReasonResources + " " + s.res[r]
		}
	}
	return ""
}

// portTaken is Kubernetes' host port conflict: same protocol and port, and
// the same address or a wildcard on either side.
func portTaken(used map[hostPort]bool, p hostPort) bool {
	if used[p] {
		return true
	}
	for u := range used {
		if u.proto == p.proto && u.port == p.port && (u.ip == "0.0.0.0" || p.ip == "0.0.0.0") {
			return true
		}
	}
	return false
}

// placementReject is the filters that depend on what is placed, cheapest
// first: ports and resources, pod anti-affinity (its own and others'),
// pod affinity, topology spread.
func (s *sched) placementReject(w *cworkload, i int32) string {
	if r := s.capacityReject(w, i); r != "" {
		return r
	}
	for _, c := range w.anti {
		ctr := &s.counters[c]
		if d := s.domains[ctr.key][i]; d >= 0 && ctr.counts[d] > 0 {
			return ReasonPodAntiAffinity
		}
	}
	for _, c := range w.sym {
		ctr := &s.counters[c]
		if d := s.domains[ctr.key][i]; d >= 0 && ctr.counts[d] > 0 {
			return ReasonPodAntiAffinity
		}
	}
	for _, t := range w.aff {
		ctr := &s.counters[t.ctr]
		d := s.domains[ctr.key][i]
		if d < 0 {
			return ReasonPodAffinity
		}
		if ctr.counts[d] == 0 && !(t.self && ctr.total == 0) {
			return ReasonPodAffinity
		}
	}
	for k := range w.hard {
		t := &w.hard[k]
		ctr := &s.counters[t.ctr]
		d := s.domains[ctr.key][i]
		if d < 0 || ctr.counts[d]+t.self-t.min > t.maxSkew {
			return ReasonTopologySpread
		}
	}
	return ""
}

// reserve binds one replica of w to node i.
func (s *sched) reserve(w *cworkload, i int32) {
	R := len(s.res)
	for r, q := range w.req {
		s.used[int(i)*R+r] += q
	}
	if len(w.ports) > 0 {
		if s.ports[i] == nil {
			s.ports[i] = map[hostPort]bool{}
		}
		for _, p := range w.ports {
			s.ports[i][p] = true
		}
	}
	s.count[i]++
	for _, c := range w.inc {
		ctr := &s.counters[c]
		if d := s.domains[ctr.key][i]; d >= 0 {
			ctr.counts[d]++
			ctr.total++
		}
	}
}

// begin prepares the per-workload scratch state from its kept replicas.
func (s *sched) begin(w *cworkload, kept map[int]int32) {
	for _, i := range kept {
		s.own[i]++
		if z := s.domains[s.zone][i]; z >= 0 {
			s.ownZone[z]++
		}
	}
	for _, ts := range [][]spreadTerm{w.hard, w.soft} {
		for k := range ts {
			t := &ts[k]
			// The domains of a constraint are those of the nodes the
			// replica may use.
			ctr := &s.counters[t.ctr]
			seen := make(map[int32]bool)
			t.doms = t.doms[:0]
			for _, i := range w.st.feasible {
				if d := s.domains[ctr.key][i]; d >= 0 && !seen[d] {
					seen[d] = true
					t.doms = append(t.doms, d)
				}
			}
			s.refreshMin(t)
		}
	}
}

func (s *sched) refreshMin(t *spreadTerm) {
	ctr := &s.counters[t.ctr]
	t.min = 0
	for k, d := range t.doms {
		if c := ctr.counts[d]; k == 0 || c < t.min {
			t.min = c
		}
	}
}

// end clears the per-workload scratch state.
func (s *sched) end(placed []manifest.ReplicaPlacement) {
	for _, r := range placed {
		if r.Node == "" {
			continue
		}
		i := s.byName[r.Node]
		s.own[i] = 0
	}
	for z := range s.ownZone {
		s.ownZone[z] = 0
	}
}

// bind reserves node i for w and updates the scratch state.
func (s *sched) bind(w *cworkload, i int32) {
	s.reserve(w, i)
	s.own[i]++
	if z := s.domains[s.zone][i]; z >= 0 {
		s.ownZone[z]++
	}
	for _, ts := range [][]spreadTerm{w.hard, w.soft} {
		for k := range ts {
			s.refreshMinAfter(&ts[k], i)
		}
	}
}

func (s *sched) refreshMinAfter(t *spreadTerm, i int32) {
	if t.self == 0 {
		return // its replicas do not count towards this constraint
	}
	ctr := &s.counters[t.ctr]
	d := s.domains[ctr.key][i]
	if d < 0 || ctr.counts[d]-1 != t.min {
		return
	}
	// The domain that grew was at the minimum; the minimum moves only
	// when no other domain is still there.
	for _, o := range t.doms {
		if ctr.counts[o] == t.min {
			return
		}
	}
	t.min++
}

// score ranks a feasible node in 0..1 per scorer, weighted as
// kube-scheduler weighs its plugins: resources 1, taints 3 and preferred
// node affinity 2 (static, precomputed), spreading 2, preferred pod
// (anti-)affinity 2.
func (s *sched) score(w *cworkload, i int32, static float32) float64 {
	sc := float64(static) + s.resourceScore(w, i)
	switch {
	case len(w.soft) > 0:
		// A workload that says how to spread is spread that way only,
		// as Kubernetes drops its default constraints then.
		var soft float64
		for k := range w.soft {
			t := &w.soft[k]
			ctr := &s.counters[t.ctr]
			if d := s.domains[ctr.key][i]; d >= 0 {
				soft += 1 / float64(1+ctr.counts[d]-t.min)
			}
		}
		sc += 2 * soft / float64(len(w.soft))
	case len(w.hard) == 0 && s.policy != MostAllocated:
		// By default, spread the workload's replicas over nodes and
		// zones. Packing (most-allocated) does without: it is the point.
		spread := 1 / float64(1+s.own[i])
		if z := s.domains[s.zone][i]; z >= 0 {
			spread = (spread + 1/float64(1+s.ownZone[z]-s.minOwnZone(w))) / 2
		} else {
			// Nodes without a zone form no zone: neutral.
			spread = (spread + 0.5) / 2
		}
		sc += 2 * spread
	}
	if w.prefWt > 0 {
		var got float64
		for _, p := range w.pref {
			ctr := &s.counters[p.ctr]
			d := s.domains[ctr.key][i]
			if p.weight < 0 {
				if d < 0 || ctr.counts[d] == 0 {
					got -= p.weight
				}
			} else if d >= 0 && ctr.counts[d] > 0 {
				got += p.weight
			}
		}
		sc += 2 * got / w.prefWt
	}
	return sc
}

// minOwnZone is the fewest replicas of the workload in a zone; zones are
// few, so it is counted when asked.
func (s *sched) minOwnZone(w *cworkload) int32 {
	if len(s.ownZone) == 0 {
		return 0
	}
	m := s.ownZone[0]
	for _, c := range s.ownZone[1:] {
		if c < m {
			m = c
		}
	}
	return m
}

// resourceScore is least-allocated (free share after placing) or
// most-allocated (used share after placing), averaged over the resources
// the node limits.
func (s *sched) resourceScore(w *cworkload, i int32) float64 {
	R := len(s.res)
	base := int(i) * R
	var sum float64
	n := 0
	for r := 0; r < R; r++ {
		a := s.alloc[base+r]
		if a <= 0 {
			continue
		}
		f := float64(s.used[base+r]+w.req[r]) / float64(a)
		if f > 1 {
			f = 1
		}
		sum += f
		n++
	}
	if n == 0 {
		// Unlimited: nothing to pack against.
		if s.policy == MostAllocated {
			return 0
		}
		return 1
	}
	if s.policy == MostAllocated {
		return sum / float64(n)
	}
	return 1 - sum/float64(n)
}

// pick returns the best node for replica idx of w among a bounded,
// deterministic sample of the feasible nodes, or the reasons every node
// gave.
func (s *sched) pick(w *cworkload, idx int) (int32, []string) {
	if len(s.nodes) == 0 {
		return -1, []string{ReasonNoNodes}
	}
	if n := w.w.Template.Spec.NodeName; n != "" {
		return s.namedNode(w, n)
	}
	if w.claims {
		if i, reasons, pinned := s.claimNode(w, idx); pinned {
			return i, reasons
		}
	}
	f := w.st.feasible
	seed := replicaSeed(w.w.Ref, idx)
	best := int32(-1)
	var bestScore float64
	var bestTie uint64
	found := 0
	var dyn map[string]int
	if len(f) > 0 {
		start := int(seed % uint64(len(f)))
		for k := 0; k < len(f) && found < s.toFind; k++ {
			p := start + k
			if p >= len(f) {
				p -= len(f)
			}
			i := f[p]
			r := s.placementReject(w, i)
			if r == "" {
				r = s.volumeReject(w, idx, i)
			}
			if r != "" {
				if dyn == nil {
					dyn = map[string]int{}
				}
				dyn[r]++
				continue
			}
			found++
			sc := s.score(w, i, w.st.score[p])
			tie := mix(seed ^ s.nodeHash[i])
			if best < 0 || sc > bestScore || (sc == bestScore && s.better(i, best, tie, bestTie)) {
				best, bestScore, bestTie = i, sc, tie
			}
		}
	}
	if best >= 0 {
		return best, nil
	}
	seen := make(map[string]int, len(w.st.reasons)+len(dyn))
	for r, c := range w.st.reasons {
		seen[r] += c
	}
	for r, c := range dyn {
		seen[r] += c
	}
	return -1, sortReasons(seen)
}

// better breaks a score tie: fewer replicas (more when packing), then
// the seeded hash.
func (s *sched) better(i, j int32, ti, tj uint64) bool {
	if s.count[i] != s.count[j] {
		if s.policy == MostAllocated {
			return s.count[i] > s.count[j]
		}
		return s.count[i] < s.count[j]
	}
	return ti < tj
}

func replicaSeed(ref manifest.Ref, idx int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d", ref, idx)
	return mix(h.Sum64())
}

// mix is splitmix64's finalizer: a cheap, well-spread hash of a seed.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (s *sched) placeReplicas(w *cworkload, kept map[int]int32) []manifest.ReplicaPlacement {
	s.begin(w, kept)
	idxs := replicaIndexes(w)
	out := make([]manifest.ReplicaPlacement, 0, len(idxs))
	// Once a replica finds no node, the next ones of the same workload
	// cannot either: nothing was placed in between.
	var stuck []string
	for _, idx := range idxs {
		if i, ok := kept[idx]; ok {
			out = append(out, manifest.ReplicaPlacement{Index: idx, Node: s.nodes[i].Name})
			continue
		}
		if stuck != nil {
			out = append(out, manifest.ReplicaPlacement{Index: idx, Pending: stuck})
			continue
		}
		i, reasons := s.pick(w, idx)
		if i < 0 && !w.w.PreemptNever && w.w.Priority > s.minPriority && !w.w.PerNode && w.w.Job == nil {
			if j := s.preempt(w, idx); j >= 0 {
				i, reasons = j, nil
			}
		}
		if i < 0 {
			// Replicas with claims are pinned each to its own node: one
			// that fits nowhere says nothing of the next.
			if !w.claims {
				stuck = reasons
			}
			out = append(out, manifest.ReplicaPlacement{Index: idx, Pending: reasons})
			continue
		}
		s.bind(w, i)
		s.useClaims(w, idx, i)
		out = append(out, manifest.ReplicaPlacement{Index: idx, Node: s.nodes[i].Name})
	}
	s.end(out)
	return out
}

// placePerNode places one replica on every feasible node (DaemonSet). The
// replica index is the lowest free one in node name order, so it is
// stable while the set of nodes is.
func (s *sched) placePerNode(w *cworkload, kept map[int]int32) []manifest.ReplicaPlacement {
	s.begin(w, kept)
	onNode := make(map[int32]int, len(kept))
	used := make(map[int]bool, len(kept))
	for idx, i := range kept {
		onNode[i] = idx
		used[idx] = true
	}
	out := make([]manifest.ReplicaPlacement, 0, len(w.st.feasible)+len(kept))
	next := 0
	for i := int32(0); int(i) < len(s.nodes); i++ {
		if idx, ok := onNode[i]; ok {
			out = append(out, manifest.ReplicaPlacement{Index: idx, Node: s.nodes[i].Name})
			continue
		}
		if !w.st.ok[i] || s.placementReject(w, i) != "" {
			continue
		}
		for used[next] {
			next++
		}
		used[next] = true
		s.bind(w, i)
		out = append(out, manifest.ReplicaPlacement{Index: next, Node: s.nodes[i].Name})
	}
	sortByIndex(out)
	s.end(out)
	return out
}

func sortByIndex(rs []manifest.ReplicaPlacement) {
	sort.Slice(rs, func(a, b int) bool { return rs[a].Index < rs[b].Index })
}

// namedNode places a replica whose pod names its node (spec.nodeName), as
// Kubernetes does without its scheduler: only there, with no filter but
// the node being known and alive and having room (the kubelet's own
// admission).
func (s *sched) namedNode(w *cworkload, name string) (int32, []string) {
	i, ok := s.byName[name]
	switch {
	case !ok:
		return -1, []string{fmt.Sprintf("spec.nodeName %s: no such node", name)}
	case !s.nodes[i].Alive:
		return -1, []string{fmt.Sprintf("spec.nodeName %s: %s", name, ReasonNotAlive)}
	}
	if r := s.capacityReject(w, i); r != "" {
		return -1, []string{fmt.Sprintf("spec.nodeName %s: %s", name, r)}
	}
	return i, nil
}
