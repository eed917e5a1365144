package rollout

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"driftless.dev/driftless/manifest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func rolling(surge, unavail manifest.IntOrString) func(*manifest.Workload) {
	return func(w *manifest.Workload) {
		w.Rollout = &manifest.RolloutSpec{Strategy: manifest.StrategyRollingUpdate, MaxSurge: surge, MaxUnavailable: unavail, ProgressDeadlineSeconds: 600}
	}
}

func intv(i int) manifest.IntOrString   { return manifest.IntOrString{IntVal: int32(i)} }
func pct(s string) manifest.IntOrString { return manifest.IntOrString{IsString: true, StrVal: s} }
func withHash(h string) func(*manifest.Workload) {
	return func(w *manifest.Workload) { w.SpecHash = h }
}

// report is what the nodes tell the leader: every placed replica is
// running, ready when ready says so.
func report(ps map[manifest.Ref]manifest.Placement, ready func(manifest.ReplicaPlacement) bool) map[manifest.Ref]manifest.Placement {
	out := map[manifest.Ref]manifest.Placement{}
	for ref, p := range ps {
		rs := append([]manifest.ReplicaPlacement(nil), p.Replicas...)
		for i := range rs {
			if rs[i].Node == "" {
				continue
			}
			rs[i].Status = &manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: ready(rs[i])}
		}
		p.Replicas = rs
		out[ref] = p
	}
	return out
}

// availableSet is the replicas available in p at now, by index, with the
// node and template they are available on.
func availableSet(p manifest.Placement, w manifest.Workload, now time.Time) map[int]string {
	out := map[int]string{}
	for _, r := range p.Replicas {
		if available(r, time.Duration(w.Rollout.MinReadySeconds)*time.Second, now) {
			out[r.Index] = r.Node + "/" + r.SpecHash
		}
	}
	return out
}

// checkStep asserts the rollout bounds between one placement and the next:
// no more replicas taken down than maxUnavailable allows, no more placed
// than maxSurge allows.
// tb is what checkStep needs of testing.T and rapid.T.
type tb interface {
	Helper()
	Fatalf(string, ...any)
}

func checkStep(t tb, w manifest.Workload, before, after manifest.Placement, now time.Time) {
	t.Helper()
	surge, unavail := w.Rollout.Bounds(w.Replicas, false)
	avail := availableSet(before, w, now)
	still := 0
	for _, r := range after.Replicas {
		if id, ok := avail[r.Index]; ok && id == r.Node+"/"+r.SpecHash {
			still++
		}
	}
	if floor := min(len(avail), w.Replicas-unavail); still < floor {
		t.Fatalf("step left %d of %d available replicas, floor %d (replicas %d, maxUnavailable %d)\nbefore %+v\nafter %+v", still, len(avail), floor, w.Replicas, unavail, before.Replicas, after.Replicas)
	}
	if ceil := max(len(before.Replicas), w.Replicas+surge); len(after.Replicas) > ceil {
		t.Fatalf("step placed %d replicas, ceiling %d", len(after.Replicas), ceil)
	}
}

func count(p manifest.Placement, hash string) int {
	n := 0
	for _, r := range p.Replicas {
		if r.SpecHash == hash {
			n++
		}
	}
	return n
}

func TestRollingUpdateStepsWithinBounds(t *testing.T) {
	nodes := []Node{node("a"), node("b"), node("c")}
	v1 := wl("web", 4, rolling(intv(1), intv(1)), withHash("v1"))
	in := schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{v1}, Nodes: nodes, Now: t0}
	cur := Schedule(in).Placements
	cur = report(cur, func(manifest.ReplicaPlacement) bool { return true })

	v2 := wl("web", 4, rolling(intv(1), intv(1)), withHash("v2"))
	ref := v2.Ref
	now := t0
	ready := map[string]bool{} // index/hash -> ready; a new replica is ready one pass after it is placed
	for step := 0; ; step++ {
		if step > 20 {
			t.Fatalf("rollout did not complete: %+v", cur[ref].Rollout)
		}
		now = now.Add(time.Second)
		out := Schedule(schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{v2}, Nodes: nodes, Current: cur, Now: now})
		p := out.Placements[ref]
		checkStep(t, v2, cur[ref], p, now)
		for _, r := range p.Replicas {
			if r.SpecHash == "v1" && r.DesiredCommit != "c1" {
				t.Fatalf("old replica %d must keep commit c1, has %q", r.Index, r.DesiredCommit)
			}
			if r.SpecHash == "v2" && r.DesiredCommit != "" {
				t.Fatalf("new replica %d names commit %q", r.Index, r.DesiredCommit)
			}
		}
		if p.Rollout.Complete() {
			if count(p, "v2") != 4 || len(p.Replicas) != 4 {
				t.Fatalf("complete rollout has %d replicas, %d updated", len(p.Replicas), count(p, "v2"))
			}
			if p.Rollout.Reason != manifest.ReasonNewReplicaSetAvailable {
				t.Fatalf("reason %q", p.Rollout.Reason)
			}
			if step < 3 {
				t.Fatalf("4 replicas with maxUnavailable 1 cannot roll in %d steps", step)
			}
			break
		}
		// Nodes: replicas seen in the previous step are ready now.
		cur = report(out.Placements, func(r manifest.ReplicaPlacement) bool {
			k := fmt.Sprintf("%d/%s", r.Index, r.SpecHash)
			was := ready[k] || r.SpecHash == "v1"
			ready[k] = true
			return was
		})
	}
}

func TestRollingUpdateFirstStep(t *testing.T) {
	nodes := []Node{node("a"), node("b")}
	for _, tc := range []struct {
		name             string
		replicas         int
		surge, unavail   manifest.IntOrString
		wantOld, wantNew int
	}{
		{"1 and 1 of 4", 4, intv(1), intv(1), 3, 2},
		{"defaults 25% of 4", 4, pct("25%"), pct("25%"), 3, 2},
		{"25% of 10: surge 3, unavailable 2", 10, pct("25%"), pct("25%"), 8, 5},
		{"surge only", 3, intv(1), intv(0), 3, 1},
		{"unavailable only", 3, intv(0), intv(2), 1, 2},
		{"both round to 0: one unavailable", 3, pct("0%"), pct("10%"), 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v1 := wl("web", tc.replicas, rolling(tc.surge, tc.unavail), withHash("v1"))
			cur := report(Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{v1}, Nodes: nodes, Now: t0}).Placements,
				func(manifest.ReplicaPlacement) bool { return true })
			v2 := v1
			v2.SpecHash = "v2"
			p := Schedule(schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{v2}, Nodes: nodes, Current: cur, Now: t0.Add(time.Second)}).Placements[v2.Ref]
			if o, n := count(p, "v1"), count(p, "v2"); o != tc.wantOld || n != tc.wantNew {
				t.Fatalf("first step: %d old, %d new; want %d old, %d new", o, n, tc.wantOld, tc.wantNew)
			}
		})
	}
}

// A template whose replicas never become ready takes down at most
// maxUnavailable replicas, is marked stalled after the progress deadline,
// and a revert rolls back at once.
func TestRollingUpdateStallsAndReverts(t *testing.T) {
	nodes := []Node{node("a"), node("b")}
	v1 := wl("web", 4, rolling(intv(1), intv(1)), withHash("v1"))
	v1.Rollout.ProgressDeadlineSeconds = 30
	cur := report(Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{v1}, Nodes: nodes, Now: t0}).Placements,
		func(manifest.ReplicaPlacement) bool { return true })
	bad := v1
	bad.SpecHash = "bad"
	ref := v1.Ref
	onlyOld := func(r manifest.ReplicaPlacement) bool { return r.SpecHash == "v1" }
	now := t0
	var p manifest.Placement
	for i := 0; i < 40; i++ {
		now = now.Add(2 * time.Second)
		out := Schedule(schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{bad}, Nodes: nodes, Current: cur, Now: now})
		p = out.Placements[ref]
		checkStep(t, bad, cur[ref], p, now)
		if a := len(availableSet(p, bad, now)); a < 3 {
			// Statuses are carried only for kept replicas; count what is
			// still running the old template.
			if count(p, "v1") < 3 {
				t.Fatalf("step %d: only %d old replicas left", i, count(p, "v1"))
			}
		}
		if now.Sub(t0) < 30*time.Second && p.Rollout.Stalled() {
			t.Fatalf("stalled after %s, deadline 30s", now.Sub(t0))
		}
		if !p.Rollout.Stalled() && now.Sub(t0) > 36*time.Second {
			t.Fatalf("not stalled after %s: %+v", now.Sub(t0), p.Rollout)
		}
		if !p.Rollout.Stalled() && out.Wake.IsZero() {
			t.Fatalf("a progressing rollout must wake the leader at its deadline")
		}
		cur = report(out.Placements, onlyOld)
	}
	if p.Rollout.Progressing != "False" || p.Rollout.Reason != manifest.ReasonProgressDeadlineExceeded {
		t.Fatalf("record %+v", p.Rollout)
	}
	if count(p, "v1") != 3 || len(p.Replicas) != 5 {
		t.Fatalf("stalled rollout holds 3 old + 2 new, got %d old of %d", count(p, "v1"), len(p.Replicas))
	}

	// git revert: v1 is the template again.
	out := Schedule(schedIn{DesiredCommit: "c3", Workloads: []manifest.Workload{v1}, Nodes: nodes, Current: cur, Now: now.Add(time.Second)})
	p = out.Placements[ref]
	if count(p, "bad") != 0 || len(p.Replicas) != 4 {
		t.Fatalf("revert keeps broken replicas: %+v", p.Replicas)
	}
	if p.Rollout.Stalled() {
		t.Fatalf("a revert is a new rollout, not stalled: %+v", p.Rollout)
	}
}

func TestRecreateStopsAllThenStarts(t *testing.T) {
	nodes := []Node{node("a"), node("b")}
	v1 := wl("web", 3, withHash("v1"), func(w *manifest.Workload) {
		w.Rollout = &manifest.RolloutSpec{Strategy: manifest.StrategyRecreate, ProgressDeadlineSeconds: 600}
	})
	cur := report(Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{v1}, Nodes: nodes, Now: t0}).Placements,
		func(manifest.ReplicaPlacement) bool { return true })
	v2 := v1
	v2.SpecHash = "v2"
	in := schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{v2}, Nodes: nodes, Current: cur, Now: t0}
	p := Schedule(in).Placements[v2.Ref]
	if len(p.Replicas) != 0 {
		t.Fatalf("Recreate must stop every old replica first: %+v", p.Replicas)
	}
	in.Current = map[manifest.Ref]manifest.Placement{v2.Ref: p}
	in.Lingering = map[manifest.Ref]int{v2.Ref: 1}
	if p := Schedule(in).Placements[v2.Ref]; len(p.Replicas) != 0 {
		t.Fatalf("a node still runs an old replica; nothing new may start: %+v", p.Replicas)
	}
	in.Lingering = nil
	if p := Schedule(in).Placements[v2.Ref]; count(p, "v2") != 3 {
		t.Fatalf("old replicas gone: 3 new ones, got %+v", p.Replicas)
	}
}

func TestPausedFreezesTemplate(t *testing.T) {
	nodes := []Node{node("a")}
	v1 := wl("web", 2, rolling(intv(1), intv(1)), withHash("v1"))
	cur := report(Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{v1}, Nodes: nodes, Now: t0}).Placements,
		func(manifest.ReplicaPlacement) bool { return true })
	v2 := v1
	v2.SpecHash = "v2"
	ro := *v1.Rollout
	ro.Paused = true
	v2.Rollout = &ro
	p := Schedule(schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{v2}, Nodes: nodes, Current: cur, Now: t0}).Placements[v2.Ref]
	if count(p, "v1") != 2 || len(p.Replicas) != 2 || p.Rollout.Reason != manifest.ReasonDeploymentPaused {
		t.Fatalf("paused rollout moved: %+v %+v", p.Replicas, p.Rollout)
	}
}

func TestMinReadySecondsDelaysAvailability(t *testing.T) {
	nodes := []Node{node("a")}
	w := wl("web", 1, rolling(intv(0), intv(1)), withHash("v1"))
	w.Rollout.MinReadySeconds = 10
	out := Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{w}, Nodes: nodes, Now: t0})
	cur := report(out.Placements, func(manifest.ReplicaPlacement) bool { return true })
	out = Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{w}, Nodes: nodes, Current: cur, Now: t0.Add(time.Second)})
	p := out.Placements[w.Ref]
	if p.Replicas[0].ReadySince == nil || !p.Replicas[0].ReadySince.Equal(t0.Add(time.Second)) {
		t.Fatalf("ReadySince %v", p.Replicas[0].ReadySince)
	}
	if p.Rollout.Ready != 1 || p.Rollout.Available != 0 {
		t.Fatalf("ready but not yet available: %+v", p.Rollout)
	}
	if !out.Wake.Equal(t0.Add(11 * time.Second)) {
		t.Fatalf("wake %v, want when minReadySeconds passes", out.Wake)
	}
	cur = report(out.Placements, func(manifest.ReplicaPlacement) bool { return true })
	p = Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{w}, Nodes: nodes, Current: cur, Now: t0.Add(11 * time.Second)}).Placements[w.Ref]
	if p.Rollout.Available != 1 || !p.Rollout.Complete() {
		t.Fatalf("available after minReadySeconds: %+v", p.Rollout)
	}
}

func TestDaemonSetRollingUpdateAndOnDelete(t *testing.T) {
	nodes := []Node{node("a"), node("b"), node("c"), node("d")}
	ds := func(hash, strategy string) manifest.Workload {
		w := wl("agent", 0, withHash(hash))
		w.Ref.Kind, w.PerNode = "DaemonSet", true
		w.Rollout = &manifest.RolloutSpec{Strategy: strategy, MaxUnavailable: intv(1), MaxSurge: intv(0)}
		return w
	}
	cur := report(Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{ds("v1", "RollingUpdate")}, Nodes: nodes, Now: t0}).Placements,
		func(manifest.ReplicaPlacement) bool { return true })
	ref := ds("v1", "").Ref

	for steps := 1; ; steps++ {
		out := Schedule(schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{ds("v2", "RollingUpdate")}, Nodes: nodes, Current: cur, Now: t0})
		p := out.Placements[ref]
		if len(p.Replicas) != 4 {
			t.Fatalf("one replica per node: %+v", p.Replicas)
		}
		down := 0
		for _, r := range p.Replicas {
			if r.Status == nil {
				down++
			}
		}
		if down > 1 {
			t.Fatalf("maxUnavailable 1, %d replicas down: %+v", down, p.Replicas)
		}
		if count(p, "v2") == 4 {
			if steps != 4 {
				t.Fatalf("4 nodes, one at a time: %d steps", steps)
			}
			break
		}
		cur = report(out.Placements, func(manifest.ReplicaPlacement) bool { return true })
	}

	// OnDelete: nothing is replaced until a replica is placed anew.
	out := Schedule(schedIn{DesiredCommit: "c3", Workloads: []manifest.Workload{ds("v3", "OnDelete")}, Nodes: nodes, Current: cur, Now: t0})
	p := out.Placements[ref]
	if count(p, "v3") != 0 {
		t.Fatalf("OnDelete replaced replicas: %+v", p.Replicas)
	}
	nodes[0].Alive = false
	nodes = append(nodes, node("e"))
	p = Schedule(schedIn{DesiredCommit: "c3", Workloads: []manifest.Workload{ds("v3", "OnDelete")}, Nodes: nodes, Current: out.Placements, Now: t0}).Placements[ref]
	for _, r := range p.Replicas {
		if want := r.Node == "e"; (r.SpecHash == "v3") != want {
			t.Fatalf("OnDelete: only the new node's replica runs v3: %+v", p.Replicas)
		}
	}
}

// Property: for any replica count, bounds and readiness, every step
// keeps the bounds, and once new replicas become ready the rollout ends
// with every replica on the new template.
func TestRollingUpdateProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 9).Draw(rt, "replicas")
		bound := func(name string) manifest.IntOrString {
			if rapid.Bool().Draw(rt, name+"IsPct") {
				return pct(fmt.Sprintf("%d%%", rapid.IntRange(0, 100).Draw(rt, name+"Pct")))
			}
			return intv(rapid.IntRange(0, 3).Draw(rt, name))
		}
		surge, unavail := bound("surge"), bound("unavail")
		if s, _ := surge.ScaledValue(100, false); s == 0 {
			if u, _ := unavail.ScaledValue(100, false); u == 0 {
				unavail = intv(1) // both zero is refused by validation
			}
		}
		nodes := []Node{node("a"), node("b"), node("c")}
		v1 := wl("web", n, rolling(surge, unavail), withHash("v1"))
		v1.Rollout.ProgressDeadlineSeconds = 20
		cur := report(Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{v1}, Nodes: nodes, Now: t0}).Placements,
			func(manifest.ReplicaPlacement) bool { return true })
		v2 := v1
		v2.SpecHash = "v2"
		v2.Replicas = rapid.IntRange(0, 9).Draw(rt, "newReplicas")
		now := t0
		flaky := true
		for step := 0; ; step++ {
			if step == 30 {
				flaky = false // from here every replica becomes ready
			}
			if step > 30+3*(n+v2.Replicas)+5 {
				rt.Fatalf("rollout does not end: %+v", cur[v2.Ref].Rollout)
			}
			now = now.Add(time.Second)
			out := Schedule(schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{v2}, Nodes: nodes, Current: cur, Now: now})
			p := out.Placements[v2.Ref]
			checkStep(rt, v2, cur[v2.Ref], p, now)
			if p.Rollout.Stalled() && cur[v2.Ref].Rollout.Stalled() {
				// A stalled rollout takes nothing available down.
				before := availableSet(cur[v2.Ref], v2, now)
				for _, r := range p.Replicas {
					delete(before, r.Index)
				}
				for idx := range before {
					if !containsIdx(p.Replicas, idx) {
						rt.Fatalf("stalled rollout removed available replica %d", idx)
					}
				}
			}
			if !flaky && p.Rollout.Complete() {
				if count(p, "v2") != v2.Replicas || len(p.Replicas) != v2.Replicas {
					rt.Fatalf("complete with %d replicas, %d updated, want %d", len(p.Replicas), count(p, "v2"), v2.Replicas)
				}
				return
			}
			cur = report(out.Placements, func(r manifest.ReplicaPlacement) bool {
				if r.SpecHash == "v1" || !flaky {
					return true
				}
				return rapid.Bool().Draw(rt, "ready")
			})
		}
	})
}

func containsIdx(rs []manifest.ReplicaPlacement, idx int) bool {
	for _, r := range rs {
		if r.Index == idx {
			return true
		}
	}
	return false
}

// Replicas ready but not yet available (minReadySeconds) when the template
// changes again are not all replaced at once: as in Kubernetes, at most
// replicas-maxUnavailable-(new ones not available) old replicas go.
func TestRollingUpdateOfNotYetAvailableReplicas(t *testing.T) {
	nodes := []Node{node("a"), node("b")}
	v1 := wl("web", 4, rolling(intv(1), intv(1)), withHash("v1"))
	v1.Rollout.MinReadySeconds = 10
	out := Schedule(schedIn{DesiredCommit: "c1", Workloads: []manifest.Workload{v1}, Nodes: nodes, Now: t0})
	cur := report(out.Placements, func(manifest.ReplicaPlacement) bool { return true })
	v2 := v1
	v2.SpecHash = "v2"
	p := Schedule(schedIn{DesiredCommit: "c2", Workloads: []manifest.Workload{v2}, Nodes: nodes, Current: cur, Now: t0.Add(time.Second)}).Placements[v2.Ref]
	if o := count(p, "v1"); o != 3 {
		t.Fatalf("one of 4 not-yet-available replicas may go, %d of 4 old left: %+v", o, p.Replicas)
	}
}
