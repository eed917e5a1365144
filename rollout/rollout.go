package rollout

import (
	"fmt"
	"sort"
	"time"

	"driftless.dev/driftless/manifest"
)

// Step is one rollout decision for one workload: which replicas to place
// and which of them keep their old template. Every other replica placed
// runs the workload's template: an old replica left out of Hold is
// replaced where it runs, an index absent from the current placement is
// a new (surge or scale-up) replica, and a current index absent from
// Indexes is removed.
type Step struct {
	// Indexes are the replica indexes to place; nil for a DaemonSet,
	// whose replicas follow the nodes.
	Indexes []int
	// Hold are the old replicas that keep their template, by index.
	Hold map[int]manifest.Revision
	// LastProgress is when the rollout last moved, as of this step;
	// Stalled is set when the progress deadline passed before it.
	LastProgress time.Time
	Stalled      bool
}

// Input is what one rollout step reads.
type Input struct {
	Workload manifest.Workload
	// Current is the committed placement with the nodes' freshest
	// reports; nil for a new workload.
	Current *manifest.Placement
	// Lingering counts replicas of the workload that nodes still report
	// running although the placement no longer binds them (Recreate
	// waits for them to stop).
	Lingering int
	Now       time.Time
}

// available reports whether replica r counts as available at now: ready,
// and ready for minReady.
func available(r manifest.ReplicaPlacement, minReady time.Duration, now time.Time) bool {
	if r.Node == "" || r.Status == nil || !r.Status.Ready {
		return false
	}
	if minReady <= 0 {
		return true
	}
	since := now
	if r.ReadySince != nil {
		since = *r.ReadySince
	}
	return !since.Add(minReady).After(now)
}

// RollingStep decides, as Kubernetes' deployment and DaemonSet
// controllers do, how far a workload moves toward its template this pass.
// It is pure.
//
// A rolling update of a Deployment keeps at least replicas-maxUnavailable
// replicas available and places at most replicas+maxSurge: old replicas
// that are not available are replaced (or removed, while surge replicas
// are placed) first, within Kubernetes' bound of replicas minus
// maxUnavailable minus new replicas not available yet; then surge replicas are
// added; then available old replicas are replaced or removed one by one
// while enough stay available. A stalled rollout (no progress for
// progressDeadlineSeconds) takes no available replica down; a paused one
// changes no replica's template. Recreate removes every old replica, then
// places the new ones once no node reports an old one running. A
// DaemonSet replaces at most maxUnavailable replicas at a time;
// OnDelete keeps the old template until a replica is placed anew.
func RollingStep(in Input) Step {
	w, now := in.Workload, in.Now
	ro := w.Rollout
	var cur []manifest.ReplicaPlacement
	var prev *manifest.RolloutStatus
	commit := ""
	if in.Current != nil {
		cur, prev, commit = in.Current.Replicas, in.Current.Rollout, in.Current.DesiredCommit
	}
	minReady := time.Duration(ro.MinReadySeconds) * time.Second
	st := Step{Hold: map[int]manifest.Revision{}, LastProgress: now}

	var old, neu []manifest.ReplicaPlacement
	avail := 0
	for _, r := range cur {
		if r.SpecHash == w.SpecHash {
			neu = append(neu, r)
		} else {
			old = append(old, r)
		}
		if available(r, minReady, now) {
			avail++
		}
	}
	hold := func(r manifest.ReplicaPlacement) {
		c := commit
		if r.DesiredCommit != "" {
			c = r.DesiredCommit
		}
		st.Hold[r.Index] = manifest.Revision{SpecHash: r.SpecHash, Commit: c}
	}

	// Progress: a rollout of the same template that moved since the last
	// record keeps its clock running from now, otherwise from the record.
	if prev != nil && prev.SpecHash == w.SpecHash && !prev.LastProgress.IsZero() {
		st.LastProgress = prev.LastProgress
		if len(neu) > prev.Updated || avail > prev.Available || len(cur) < prev.Total {
			st.LastProgress = now
		}
	}
	if ro.Paused {
		// The deadline counts from the resume, as in Kubernetes.
		st.LastProgress = now
	}
	incomplete := len(old) > 0 || avail < len(cur) || (!w.PerNode && (len(cur) != w.Replicas || avail < w.Replicas))
	if d := ro.ProgressDeadlineSeconds; d > 0 && incomplete && !now.Before(st.LastProgress.Add(time.Duration(d)*time.Second)) {
		st.Stalled = true
	}

	if w.PerNode {
		return perNodeStep(w, st, old, cur, minReady, now, hold)
	}

	N := w.Replicas
	used := map[int]bool{}
	for _, r := range cur {
		used[r.Index] = true
	}
	keep := map[int]bool{}
	for _, r := range cur {
		keep[r.Index] = true
	}
	total, nNew := len(cur), len(neu)
	next := 0
	add := func() {
		for used[next] {
			next++
		}
		used[next] = true
		keep[next] = true
		total++
		nNew++
	}
	del := func(r manifest.ReplicaPlacement) {
		delete(keep, r.Index)
		total--
	}
	// Replicas to take down, the least useful first: not placed, not
	// ready, not yet available, then by index.
	rank := func(rs []manifest.ReplicaPlacement) []manifest.ReplicaPlacement {
		out := append([]manifest.ReplicaPlacement(nil), rs...)
		score := func(r manifest.ReplicaPlacement) int {
			switch {
			case r.Node == "":
				return 0
			case r.Status == nil || !r.Status.Ready:
				return 1
			case !available(r, minReady, now):
				return 2
			}
			return 3
		}
		sort.SliceStable(out, func(i, j int) bool {
			si, sj := score(out[i]), score(out[j])
			if si != sj {
				return si < sj
			}
			return out[i].Index < out[j].Index
		})
		return out
	}

	switch {
	case ro.Paused:
		for _, r := range old {
			hold(r)
		}
		for total < N {
			add()
		}
		for _, r := range rank(append(append([]manifest.ReplicaPlacement(nil), old...), neu...)) {
			if total <= N {
				break
			}
			del(r)
		}

	case ro.Strategy == manifest.StrategyRecreate:
		if len(old) > 0 {
			// Every old replica goes before any new one starts.
			for _, r := range old {
				del(r)
			}
			break
		}
		if in.Lingering > 0 && nNew < N {
			break
		}
		for total < N {
			add()
		}
		for _, r := range rank(neu) {
			if total <= N {
				break
			}
			del(r)
		}

	default: // RollingUpdate
		maxSurge, maxUnavailable := ro.Bounds(N, false)
		minAvail, maxTotal := N-maxUnavailable, N+maxSurge
		// As Kubernetes bounds scaling an old ReplicaSet down: replicas
		// not available yet may be about to become so, so at most
		// total-minAvail-(new ones not available) old replicas go.
		budget := total - minAvail
		for _, r := range neu {
			if !available(r, minReady, now) {
				budget--
			}
		}
		var oldAvail []manifest.ReplicaPlacement
		// Old replicas that are not available go first: that costs
		// nothing available.
		for _, r := range rank(old) {
			if available(r, minReady, now) {
				oldAvail = append(oldAvail, r)
				continue
			}
			if budget <= 0 {
				hold(r)
				continue
			}
			budget--
			if total > N || nNew >= N {
				del(r)
			} else {
				nNew++ // replaced in place
			}
		}
		for total < maxTotal && nNew < N {
			add()
		}
		for _, r := range oldAvail {
			if st.Stalled || avail-1 < minAvail || budget <= 0 {
				hold(r)
				continue
			}
			avail--
			budget--
			if total > N || nNew >= N {
				del(r)
			} else {
				nNew++
			}
		}
		// Room freed by removed old replicas goes to new ones at once.
		for total < maxTotal && nNew < N {
			add()
		}
		// Too many on the new template (a scale-down): the least useful go.
		for _, r := range rank(neu) {
			if nNew <= N || total <= N {
				break
			}
			del(r)
			nNew--
		}
	}

	st.Indexes = make([]int, 0, len(keep))
	for i := range keep {
		st.Indexes = append(st.Indexes, i)
	}
	sort.Ints(st.Indexes)
	for i := range st.Hold {
		if !keep[i] {
			delete(st.Hold, i)
		}
	}
	return st
}

// perNodeStep is a DaemonSet's step: the scheduler keeps one replica per
// feasible node; the step only says which old ones keep their template.
func perNodeStep(w manifest.Workload, st Step, old, cur []manifest.ReplicaPlacement, minReady time.Duration, now time.Time, hold func(manifest.ReplicaPlacement)) Step {
	ro := w.Rollout
	if ro.Strategy == manifest.StrategyOnDelete {
		for _, r := range old {
			hold(r)
		}
		return st
	}
	_, maxUnavailable := ro.Bounds(len(cur), true)
	unavailable := 0
	for _, r := range cur {
		if !available(r, minReady, now) {
			unavailable++
		}
	}
	for _, r := range old {
		if !available(r, minReady, now) {
			continue // replaced at once: it is down anyway
		}
		if unavailable < maxUnavailable {
			unavailable++
			continue
		}
		hold(r)
	}
	return st
}

// Record is the record of a workload's rollout after its step,
// from the placed replicas.
func Record(w manifest.Workload, st Step, prev *manifest.RolloutStatus, rs []manifest.ReplicaPlacement, now time.Time) *manifest.RolloutStatus {
	ro := w.Rollout
	minReady := time.Duration(ro.MinReadySeconds) * time.Second
	rec := &manifest.RolloutStatus{SpecHash: w.SpecHash, Replicas: w.Replicas, Total: len(rs), LastProgress: st.LastProgress}
	if w.PerNode {
		rec.Replicas = len(rs)
	}
	for _, r := range rs {
		if r.SpecHash == w.SpecHash {
			rec.Updated++
		}
		if r.Node != "" && r.Status != nil && r.Status.Ready {
			rec.Ready++
		}
		if available(r, minReady, now) {
			rec.Available++
		}
	}
	if prev != nil && prev.SpecHash == w.SpecHash && (rec.Updated > prev.Updated || rec.Total < prev.Total) {
		rec.LastProgress = now
	}
	switch {
	case ro.Paused:
		rec.Progressing, rec.Reason = "Unknown", manifest.ReasonDeploymentPaused
		rec.Message = "rollout paused"
	case rec.Complete():
		rec.Progressing, rec.Reason = "True", manifest.ReasonNewReplicaSetAvailable
		rec.Message = fmt.Sprintf("%d/%d replicas updated and available", rec.Available, rec.Replicas)
		if prev.Complete() && prev.SpecHash == w.SpecHash {
			rec.LastProgress = prev.LastProgress // nothing moved
		}
	case st.Stalled && !rec.LastProgress.After(st.LastProgress):
		rec.Progressing, rec.Reason = "False", manifest.ReasonProgressDeadlineExceeded
		rec.Message = fmt.Sprintf("no progress for %ds: %d/%d replicas updated, %d available", ro.ProgressDeadlineSeconds, rec.Updated, rec.Replicas, rec.Available)
	default:
		rec.Progressing, rec.Reason = "True", manifest.ReasonReplicaSetUpdated
		rec.Message = fmt.Sprintf("%d/%d replicas updated, %d available", rec.Updated, rec.Replicas, rec.Available)
	}
	return rec
}

// Wake is when time alone changes rec: a ready replica becomes
// available, or the progress deadline passes.
func Wake(w manifest.Workload, rec *manifest.RolloutStatus, rs []manifest.ReplicaPlacement, now time.Time) time.Time {
	var wake time.Time
	soon := func(t time.Time) {
		if t.After(now) && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	ro := w.Rollout
	if ro.MinReadySeconds > 0 {
		for _, r := range rs {
			if r.ReadySince != nil && r.Status != nil && r.Status.Ready {
				soon(r.ReadySince.Add(time.Duration(ro.MinReadySeconds) * time.Second))
			}
		}
	}
	if d := ro.ProgressDeadlineSeconds; d > 0 && !rec.Complete() && !rec.Stalled() && !ro.Paused {
		soon(rec.LastProgress.Add(time.Duration(d) * time.Second))
	}
	return wake
}
