package rollout

import (
	"reflect"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

var ssNow = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// ssReplica is ordinal i on node n running template hash, ready for the
// given time (negative: not ready).
func ssReplica(i int, hash string, readyFor time.Duration) manifest.ReplicaPlacement {
	r := manifest.ReplicaPlacement{Index: i, Node: "n", SpecHash: hash, Status: &manifest.ReplicaStatus{Phase: "Running"}}
	if readyFor >= 0 {
		r.Status.Ready = true
		t := ssNow.Add(-readyFor)
		r.ReadySince = &t
	}
	return r
}

func ssReady(i int, hash string) manifest.ReplicaPlacement { return ssReplica(i, hash, time.Hour) }

func ssNotReady(i int, hash string) manifest.ReplicaPlacement { return ssReplica(i, hash, -1) }

func TestStatefulStep(t *testing.T) {
	old := manifest.Revision{SpecHash: "old", Commit: "c1"}
	type tc struct {
		name       string
		policy     string // OrderedReady when empty
		start      int
		partition  int
		strategy   string                // RollingUpdate when empty
		maxUnavail *manifest.IntOrString // 1 when nil
		minReady   int
		replicas   int
		cur        []manifest.ReplicaPlacement // nil: no current placement
		lingering  int
		wantIdx    []int
		wantHold   map[int]manifest.Revision
	}
	mu := func(v manifest.IntOrString) *manifest.IntOrString { return &v }
	cases := []tc{
		{name: "ordered from nothing creates ordinal 0 only", replicas: 3, wantIdx: []int{0}},
		{name: "ordered adds 1 once 0 is running and ready", replicas: 3,
			cur: []manifest.ReplicaPlacement{ssReady(0, "new")}, wantIdx: []int{0, 1}},
		{name: "ordered adds nothing while 0 is not ready", replicas: 3,
			cur: []manifest.ReplicaPlacement{ssNotReady(0, "new")}, wantIdx: []int{0}},
		{name: "ordered adds 2 once 0 and 1 are ready", replicas: 3,
			cur: []manifest.ReplicaPlacement{ssReady(0, "new"), ssReady(1, "new")}, wantIdx: []int{0, 1, 2}},
		{name: "ordered waits on a lower ordinal not ready", replicas: 3,
			cur: []manifest.ReplicaPlacement{ssReady(0, "new"), ssNotReady(1, "new")}, wantIdx: []int{0, 1}},
		{name: "ordered keeps existing higher ordinals behind one not ready", replicas: 3,
			cur: []manifest.ReplicaPlacement{ssNotReady(0, "new"), ssReady(1, "new"), ssReady(2, "new")}, wantIdx: []int{0, 1, 2}},
		{name: "ordered pending replica blocks the next", replicas: 3,
			cur: []manifest.ReplicaPlacement{{Index: 0, Pending: []string{"no nodes"}}}, wantIdx: []int{0}},
		{name: "parallel from nothing creates all", policy: manifest.Parallel, replicas: 3, wantIdx: []int{0, 1, 2}},
		{name: "parallel ordinals.start 3", policy: manifest.Parallel, start: 3, replicas: 2, wantIdx: []int{3, 4}},
		{name: "ordered ordinals.start 3 from nothing", start: 3, replicas: 2, wantIdx: []int{3}},
		{name: "ordered ordinals.start 3 with 3 ready", start: 3, replicas: 2,
			cur: []manifest.ReplicaPlacement{ssReady(3, "new")}, wantIdx: []int{3, 4}},
		{name: "ordered scale down removes only the highest surplus", replicas: 2,
			cur:     []manifest.ReplicaPlacement{ssReady(0, "new"), ssReady(1, "new"), ssReady(2, "new"), ssReady(3, "new")},
			wantIdx: []int{0, 1, 2}},
		{name: "ordered scale down keeps all while one lingers", replicas: 2, lingering: 1,
			cur:     []manifest.ReplicaPlacement{ssReady(0, "new"), ssReady(1, "new"), ssReady(2, "new"), ssReady(3, "new")},
			wantIdx: []int{0, 1, 2, 3}},
		{name: "ordered scale down to zero removes the highest", replicas: 0,
			cur:     []manifest.ReplicaPlacement{ssReady(0, "new"), ssReady(1, "new")},
			wantIdx: []int{0}},
		{name: "parallel scale down removes all surplus", policy: manifest.Parallel, replicas: 2,
			cur:     []manifest.ReplicaPlacement{ssReady(0, "new"), ssReady(1, "new"), ssReady(2, "new"), ssReady(3, "new")},
			wantIdx: []int{0, 1}},
		{name: "rolling replaces the highest old ordinal first", replicas: 3,
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old, 1: old}},
		{name: "rolling waits while the replaced one is not ready", replicas: 3,
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssNotReady(2, "new")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old, 1: old}},
		{name: "rolling moves on once the replaced one is ready", replicas: 3,
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReady(2, "new")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old}},
		{name: "rolling done holds nothing", replicas: 3,
			cur:     []manifest.ReplicaPlacement{ssReady(0, "new"), ssReady(1, "new"), ssReady(2, "new")},
			wantIdx: []int{0, 1, 2}},
		{name: "rolling maxUnavailable 2 replaces two", replicas: 3, maxUnavail: mu(intv(2)),
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old}},
		{name: "rolling maxUnavailable 50% of 4 replaces two", replicas: 4, maxUnavail: mu(pct("50%")),
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReady(2, "old"), ssReady(3, "old")},
			wantIdx:  []int{0, 1, 2, 3},
			wantHold: map[int]manifest.Revision{0: old, 1: old}},
		{name: "rolling maxUnavailable 0 still replaces one", replicas: 3, maxUnavail: mu(intv(0)),
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old, 1: old}},
		{name: "rolling holds ordinals below partition", replicas: 3, partition: 2, maxUnavail: mu(intv(3)),
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old, 1: old}},
		{name: "rolling partition at replicas holds all", replicas: 3, partition: 3, maxUnavail: mu(intv(3)),
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old, 1: old, 2: old}},
		{name: "rolling replaces an old replica that is not available at once", replicas: 3,
			cur:      []manifest.ReplicaPlacement{ssNotReady(0, "old"), ssReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{1: old, 2: old}},
		{name: "rolling below partition holds even a broken replica", replicas: 3, partition: 1,
			cur:      []manifest.ReplicaPlacement{ssNotReady(0, "old"), ssReady(1, "new"), ssReady(2, "new")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old}},
		{name: "hold keeps a replica's own commit", replicas: 2,
			cur: []manifest.ReplicaPlacement{
				func() manifest.ReplicaPlacement { r := ssReady(0, "old"); r.DesiredCommit = "c0"; return r }(),
				ssReady(1, "old"),
			},
			wantIdx:  []int{0, 1},
			wantHold: map[int]manifest.Revision{0: {SpecHash: "old", Commit: "c0"}}},
		{name: "OnDelete holds every old placed replica", strategy: "OnDelete", replicas: 3,
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssNotReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old, 1: old, 2: old}},
		{name: "OnDelete holds neither new nor pending replicas", strategy: "OnDelete", policy: manifest.Parallel, replicas: 3,
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "new"), {Index: 2, SpecHash: "old"}},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old}},
		{name: "minReadySeconds: ready too briefly is not available", replicas: 3, minReady: 10,
			cur: []manifest.ReplicaPlacement{ssReplica(0, "new", 5*time.Second)}, wantIdx: []int{0}},
		{name: "minReadySeconds: ready long enough is available", replicas: 3, minReady: 10,
			cur: []manifest.ReplicaPlacement{ssReplica(0, "new", 10*time.Second)}, wantIdx: []int{0, 1}},
		{name: "minReadySeconds: ready without ReadySince is not available yet", replicas: 3, minReady: 10,
			cur: []manifest.ReplicaPlacement{func() manifest.ReplicaPlacement {
				r := ssReady(0, "new")
				r.ReadySince = nil
				return r
			}()}, wantIdx: []int{0}},
		{name: "minReadySeconds: rolling counts a briefly ready replica unavailable", replicas: 3, minReady: 10,
			cur:      []manifest.ReplicaPlacement{ssReplica(0, "old", 5*time.Second), ssReady(1, "old"), ssReady(2, "old")},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{1: old, 2: old}},
		{name: "minReadySeconds: rolling waits on a new replica ready too briefly", replicas: 3, minReady: 10,
			cur:      []manifest.ReplicaPlacement{ssReady(0, "old"), ssReady(1, "old"), ssReplica(2, "new", 5*time.Second)},
			wantIdx:  []int{0, 1, 2},
			wantHold: map[int]manifest.Revision{0: old, 1: old}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			policy := c.policy
			if policy == "" {
				policy = manifest.OrderedReady
			}
			strategy := c.strategy
			if strategy == "" {
				strategy = "RollingUpdate"
			}
			maxUnavail := intv(1)
			if c.maxUnavail != nil {
				maxUnavail = *c.maxUnavail
			}
			w := manifest.Workload{
				Ref:      manifest.Ref{Namespace: "default", Kind: "StatefulSet", Name: "web"},
				Replicas: c.replicas,
				SpecHash: "new",
				Stateful: &manifest.StatefulSpec{PodManagementPolicy: policy, OrdinalStart: c.start, Partition: c.partition},
				Rollout:  &manifest.RolloutSpec{Strategy: strategy, MinReadySeconds: c.minReady, MaxUnavailable: maxUnavail},
			}
			in := Input{Workload: w, Lingering: c.lingering, Now: ssNow}
			if c.cur != nil {
				in.Current = &manifest.Placement{Workload: w.Ref, DesiredCommit: "c1", SpecHash: "new", Replicas: c.cur}
			}
			st := StatefulStep(in)
			if !reflect.DeepEqual(st.Indexes, c.wantIdx) {
				t.Errorf("Indexes = %v, want %v", st.Indexes, c.wantIdx)
			}
			want := c.wantHold
			if want == nil {
				want = map[int]manifest.Revision{}
			}
			if !reflect.DeepEqual(st.Hold, want) {
				t.Errorf("Hold = %v, want %v", st.Hold, want)
			}
		})
	}
}
