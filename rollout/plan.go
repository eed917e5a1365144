// Package rollout holds the leader's rollout controllers: how far each
// Deployment, DaemonSet and StatefulSet moves toward its template in one
// pass (which replica indexes exist, which keep their old template), as
// requests to the scheduler, and the record of each rollout once the
// scheduler placed it. Pure: no I/O, no clock of its own.
package rollout

import (
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
)

// Plan decides the step of every workload that rolls out (a Deployment,
// DaemonSet or StatefulSet; Jobs have their own controller) from the
// committed placements with the nodes' freshest reports.
func Plan(ws []manifest.Workload, current map[manifest.Ref]manifest.Placement, lingering map[manifest.Ref]int, now time.Time) map[manifest.Ref]Step {
	steps := map[manifest.Ref]Step{}
	for _, w := range ws {
		if w.Rollout == nil || w.Job != nil {
			continue
		}
		var cur *manifest.Placement
		if p, ok := current[w.Ref]; ok {
			cur = &p
		}
		in := Input{Workload: w, Current: cur, Lingering: lingering[w.Ref], Now: now}
		if w.Stateful != nil {
			steps[w.Ref] = StatefulStep(in)
		} else {
			steps[w.Ref] = RollingStep(in)
		}
	}
	return steps
}

// Requests are the steps as the scheduler takes them.
func Requests(steps map[manifest.Ref]Step, into map[manifest.Ref]scheduler.Request) map[manifest.Ref]scheduler.Request {
	if into == nil {
		into = make(map[manifest.Ref]scheduler.Request, len(steps))
	}
	for ref, st := range steps {
		into[ref] = scheduler.Request{Indexes: st.Indexes, Hold: st.Hold, TrackReady: true}
	}
	return into
}

// Finish writes each rolled-out workload's record into its placement and
// returns when time alone changes one (a replica becomes available, a
// progress deadline passes; zero for never).
func Finish(ws []manifest.Workload, steps map[manifest.Ref]Step, current, placements map[manifest.Ref]manifest.Placement, now time.Time) time.Time {
	var wake time.Time
	for _, w := range ws {
		st, ok := steps[w.Ref]
		p, placed := placements[w.Ref]
		if !ok || !placed {
			continue
		}
		var prev *manifest.RolloutStatus
		if c, ok := current[w.Ref]; ok {
			prev = c.Rollout
		}
		p.Rollout = Record(w, st, prev, p.Replicas, now)
		if t := Wake(w, p.Rollout, p.Replicas, now); !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
		placements[w.Ref] = p
	}
	return wake
}
