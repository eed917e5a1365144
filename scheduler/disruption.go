package scheduler

import (
	"fmt"
	"sort"

	"driftless.dev/driftless/manifest"
)

// Reasons of disruptions.
const (
	// ReasonPreempted starts the pending reason of a replica a higher
	// priority took the place of.
	ReasonPreempted = "preempted by"
	// ReasonEvictionBlocked starts the disruption note of a replica a
	// drain or NoExecute taint would evict and its budget keeps.
	ReasonEvictionBlocked = "eviction blocked by PodDisruptionBudget"
)

type budgetState struct {
	b       manifest.Budget
	allowed int
}

// initBudgets computes what each PodDisruptionBudget allows this pass:
// its healthy replicas (placed, ready) against the replicas its
// workloads want, as Kubernetes' disruption controller does.
func (s *sched) initBudgets(in Input) {
	s.done = make([]bool, len(s.ws))
	s.budgetsOf = make([][]int, len(s.ws))
	s.preempted = map[manifest.Ref]map[int]string{}
	s.blocked = map[manifest.Ref]map[int]string{}
	for i, w := range s.ws {
		if i == 0 || w.w.Priority < s.minPriority {
			s.minPriority = w.w.Priority
		}
	}
	for bi, b := range in.Budgets {
		expected, healthy := 0, 0
		for wi, w := range s.ws {
			if !b.Selects(w.w) {
				continue
			}
			s.budgetsOf[wi] = append(s.budgetsOf[wi], bi)
			cur := in.Current[w.w.Ref]
			if w.w.PerNode {
				expected += len(cur.Replicas)
			} else {
				expected += w.w.Replicas
			}
			for _, r := range cur.Replicas {
				if healthyReplica(r) {
					healthy++
				}
			}
		}
		s.budgets = append(s.budgets, budgetState{b: b, allowed: b.Allowed(expected, healthy)})
	}
}

func healthyReplica(r manifest.ReplicaPlacement) bool {
	return r.Node != "" && r.Status != nil && r.Status.Ready
}

// blockingBudget names the budget that forbids evicting n healthy
// replicas of workload wi ("" when none does). Unhealthy replicas may
// always go.
func (s *sched) blockingBudget(wi, n int) string {
	for _, bi := range s.budgetsOf[wi] {
		if s.budgets[bi].allowed < n {
			return s.budgets[bi].b.Key()
		}
	}
	return ""
}

func (s *sched) consume(wi int) {
	for _, bi := range s.budgetsOf[wi] {
		s.budgets[bi].allowed--
	}
}

// evict reports whether replica r of w may be evicted from its node now;
// when its budget forbids it, it stays and says why.
func (s *sched) evict(w *cworkload, r manifest.ReplicaPlacement) bool {
	if !healthyReplica(r) {
		return true
	}
	if b := s.blockingBudget(w.idx, 1); b != "" {
		note(s.blocked, w.w.Ref, r.Index, fmt.Sprintf("%s %s (no disruption allowed)", ReasonEvictionBlocked, b))
		return false
	}
	s.consume(w.idx)
	return true
}

func note(m map[manifest.Ref]map[int]string, ref manifest.Ref, idx int, msg string) {
	if m[ref] == nil {
		m[ref] = map[int]string{}
	}
	m[ref][idx] = msg
}

// noteDisruptions writes, on w's replicas, why one was preempted (when it
// found no other node) or why one stays on a node that evicts it.
func (s *sched) noteDisruptions(w *cworkload, rs []manifest.ReplicaPlacement) {
	for i := range rs {
		r := &rs[i]
		if msg, ok := s.preempted[w.w.Ref][r.Index]; ok && r.Node == "" {
			r.Pending = append([]string{msg}, r.Pending...)
		}
		if msg, ok := s.blocked[w.w.Ref][r.Index]; ok && r.Node != "" {
			r.Disruption = msg
		}
	}
}

// unreserve is reserve undone: replica of w leaves node i.
func (s *sched) unreserve(w *cworkload, i int32) {
	R := len(s.res)
	for r, q := range w.req {
		s.used[int(i)*R+r] -= q
	}
	for _, p := range w.ports {
		delete(s.ports[i], p)
	}
	s.count[i]--
	for _, c := range w.inc {
		ctr := &s.counters[c]
		if d := s.domains[ctr.key][i]; d >= 0 {
			ctr.counts[d]--
			ctr.total--
		}
	}
}

type victim struct {
	wi, idx int
}

// preempt finds, as kube-scheduler's preemption does, the node where
// evicting the fewest replicas of lower priority (not DaemonSets' or
// Jobs', within their disruption budgets) lets replica idx of w fit,
// evicts them and returns the node; -1 when no node would do.
func (s *sched) preempt(w *cworkload, idx int) int32 {
	best, bestPrio := int32(-1), int32(0)
	var bestVictims []victim
	onlyNode := int32(-1)
	if w.claims {
		if i, _, pinned := s.claimNode(w, idx); pinned {
			if i >= 0 {
				return -1 // it fits: nothing to preempt
			}
			// Pinned to a node that refuses it: preempt there only.
			for _, rc := range w.w.ReplicaClaims(idx) {
				if n, ok := s.claimNodes[rc.Claim.Key()]; ok && rc.Claim.SharedPath == "" {
					if j, ok := s.byName[n]; ok {
						onlyNode = j
					}
				}
			}
			if onlyNode < 0 {
				return -1
			}
		}
	}
	for i := int32(0); int(i) < len(s.nodes); i++ {
		if (onlyNode >= 0 && i != onlyNode) || s.staticReject(w, i, false) != "" {
			continue
		}
		var cands []victim
		for wi, vw := range s.ws {
			if s.done[wi] || vw.w.PerNode || vw.w.Job != nil || vw.w.Priority >= w.w.Priority || vw == w {
				continue
			}
			for vidx, n := range s.kept[wi] {
				if n == i {
					cands = append(cands, victim{wi, vidx})
				}
			}
		}
		if len(cands) == 0 {
			continue
		}
		for _, v := range cands {
			s.unreserve(s.ws[v.wi], i)
		}
		if s.placementReject(w, i) != "" {
			for _, v := range cands {
				s.reserve(s.ws[v.wi], i)
			}
			continue
		}
		// Give back as many as still leave room, highest priority first.
		sort.Slice(cands, func(a, b int) bool {
			pa, pb := s.ws[cands[a].wi].w.Priority, s.ws[cands[b].wi].w.Priority
			if pa != pb {
				return pa > pb
			}
			if cands[a].wi != cands[b].wi {
				return cands[a].wi < cands[b].wi
			}
			return cands[a].idx < cands[b].idx
		})
		var victims []victim
		for _, v := range cands {
			s.reserve(s.ws[v.wi], i)
			if s.placementReject(w, i) != "" {
				s.unreserve(s.ws[v.wi], i)
				victims = append(victims, v)
			}
		}
		for _, v := range victims {
			s.reserve(s.ws[v.wi], i)
		}
		if !s.budgetsAllow(victims) {
			continue
		}
		var top int32
		for _, v := range victims {
			if p := s.ws[v.wi].w.Priority; p > top {
				top = p
			}
		}
		if best < 0 || len(victims) < len(bestVictims) || (len(victims) == len(bestVictims) && top < bestPrio) {
			best, bestPrio, bestVictims = i, top, victims
		}
	}
	if best < 0 {
		return -1
	}
	for _, v := range bestVictims {
		vw := s.ws[v.wi]
		s.unreserve(vw, best)
		delete(s.kept[v.wi], v.idx)
		s.consume(v.wi)
		note(s.preempted, vw.w.Ref, v.idx, fmt.Sprintf("%s %s/%s[%d] (priority %d > %d) on %s",
			ReasonPreempted, w.w.Namespace, w.w.Name, idx, w.w.Priority, vw.w.Priority, s.nodes[best].Name))
	}
	return best
}

// budgetsAllow reports whether the budgets let every victim go at once
// (healthy or not: a kept replica's health is not known here, so each
// counts).
func (s *sched) budgetsAllow(vs []victim) bool {
	per := map[int]int{}
	for _, v := range vs {
		per[v.wi]++
	}
	need := map[int]int{}
	for wi, n := range per {
		for _, bi := range s.budgetsOf[wi] {
			need[bi] += n
		}
	}
	for bi, n := range need {
		if s.budgets[bi].allowed < n {
			return false
		}
	}
	return true
}
