package rollout

import (
	"sort"
	"time"

	"driftless.dev/driftless/manifest"
)

// StatefulStep decides, as Kubernetes' StatefulSet controller does, which
// ordinals of a StatefulSet exist this pass and which keep their old
// template. It is pure.
//
// OrderedReady creates ordinals in ascending order, each once every
// lower one is available (ready for minReadySeconds), and removes surplus
// ordinals from the highest down, one at a time, each once the previous
// one's container is gone; Parallel creates and removes them all at once.
// A RollingUpdate replaces replicas in descending ordinal order, those
// below partition excepted, while at most maxUnavailable replicas are
// unavailable (an old replica that is not available is replaced at once:
// a broken rollout is mended by pushing a fix); OnDelete keeps the old
// template until a replica is placed anew. A replica is replaced where
// it runs, with the same ordinal, name and claims.
func StatefulStep(in Input) Step {
	w, now := in.Workload, in.Now
	ss, ro := w.Stateful, w.Rollout
	minReady := time.Duration(ro.MinReadySeconds) * time.Second
	st := Step{Hold: map[int]manifest.Revision{}, LastProgress: now}
	cur := map[int]manifest.ReplicaPlacement{}
	commit := ""
	if in.Current != nil {
		commit = in.Current.DesiredCommit
		for _, r := range in.Current.Replicas {
			cur[r.Index] = r
		}
		if prev := in.Current.Rollout; prev != nil && prev.SpecHash == w.SpecHash && !prev.LastProgress.IsZero() {
			st.LastProgress = prev.LastProgress
		}
	}
	ordered := ss.PodManagementPolicy == manifest.OrderedReady
	want := ss.Ordinals(w.Replicas)
	wanted := make(map[int]bool, len(want))
	for _, o := range want {
		wanted[o] = true
	}

	// Which ordinals exist.
	blocked := false
	for _, o := range want {
		r, had := cur[o]
		if had {
			st.Indexes = append(st.Indexes, o)
			if ordered && !available(r, minReady, now) {
				blocked = true
			}
			continue
		}
		if blocked {
			continue
		}
		st.Indexes = append(st.Indexes, o)
		if ordered {
			blocked = true
		}
	}
	var surplus []int
	for o := range cur {
		if !wanted[o] {
			surplus = append(surplus, o)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(surplus)))
	if ordered && len(surplus) > 0 {
		// The highest goes first, and only once no earlier removal is
		// still running somewhere; the others stay meanwhile.
		keep := surplus[1:]
		if in.Lingering > 0 {
			keep = surplus
		}
		st.Indexes = append(st.Indexes, keep...)
	}
	sort.Ints(st.Indexes)

	// Which keep their template.
	hold := func(r manifest.ReplicaPlacement) {
		c := commit
		if r.DesiredCommit != "" {
			c = r.DesiredCommit
		}
		st.Hold[r.Index] = manifest.Revision{SpecHash: r.SpecHash, Commit: c}
	}
	isOld := func(r manifest.ReplicaPlacement) bool {
		return r.Node != "" && r.SpecHash != "" && r.SpecHash != w.SpecHash
	}
	if ro.Strategy == "OnDelete" {
		for _, o := range st.Indexes {
			if r, ok := cur[o]; ok && isOld(r) {
				hold(r)
			}
		}
		return st
	}
	maxUnavail, _ := ro.MaxUnavailable.ScaledValue(w.Replicas, false)
	if maxUnavail < 1 {
		maxUnavail = 1
	}
	unavailable := 0
	for _, o := range st.Indexes {
		if r, ok := cur[o]; !ok || !available(r, minReady, now) {
			unavailable++
		}
	}
	budget := maxUnavail - unavailable
	for i := len(st.Indexes) - 1; i >= 0; i-- {
		o := st.Indexes[i]
		r, ok := cur[o]
		if !ok || !isOld(r) {
			continue
		}
		switch {
		case o < ss.Partition:
			hold(r)
		case !available(r, minReady, now):
			// Replaced at once: it serves nothing as it is.
		case budget > 0:
			budget--
		default:
			hold(r)
		}
	}
	return st
}
