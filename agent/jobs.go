package agent

import (
	"sort"
	"time"

	"driftless.dev/driftless/jobs"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/status"
)

// now is the leader's clock for Jobs and CronJobs (Deps.Now in tests).
func (a *Agent) now() time.Time {
	if a.deps.Now != nil {
		return a.deps.Now()
	}
	return time.Now()
}

// observedPlacements is cur's placements with the freshest status every
// node reported for its replicas. A Job replica's Succeeded or Failed is
// final: no later report (a container gone, a node restarted) changes it.
func (a *Agent) observedPlacements(cur *status.State) map[manifest.Ref]manifest.Placement {
	reports := map[string]map[string]manifest.ReplicaStatus{}
	if a.deps.Cluster != nil {
		for n, r := range a.deps.Cluster.Reports() {
			reports[n] = r.Replicas
		}
	}
	out := make(map[manifest.Ref]manifest.Placement, len(cur.Placements))
	for ref, p := range cur.Placements {
		rs := make([]manifest.ReplicaPlacement, len(p.Replicas))
		copy(rs, p.Replicas)
		for i, r := range rs {
			if r.Node == "" || (p.Job != nil && jobs.Terminal(r.Status)) {
				continue
			}
			if o, ok := a.reportFor(reports, ref, r); ok {
				rs[i].Status = &o
			}
		}
		p.Replicas = rs
		out[ref] = p
	}
	return out
}

func (a *Agent) reportFor(reports map[string]map[string]manifest.ReplicaStatus, ref manifest.Ref, r manifest.ReplicaPlacement) (manifest.ReplicaStatus, bool) {
	if r.Node == a.cfg.Node {
		o, ok := a.observed[reconcile.ReplicaKey{Workload: ref, Index: r.Index}]
		return o, ok
	}
	o, ok := reports[r.Node][reportKey(ref, r.Index)]
	return o, ok
}

// place runs the Job and CronJob controllers, then the scheduler, and
// returns the placements the leader wants and when time alone will change
// them (a deadline, a TTL, a schedule time).
func (a *Agent) place(cur *status.State, nodes []scheduler.Node, now time.Time) (map[manifest.Ref]manifest.Placement, time.Time) {
	set, commit := a.inForce.set, a.inForce.rev.Commit
	base := a.observedPlacements(cur)
	var wake time.Time
	soon := func(t time.Time) {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	ws := make([]manifest.Workload, 0, len(set.Workloads))
	results := map[manifest.Ref]jobs.JobResult{}
	stepJob := func(w manifest.Workload) {
		var prev *manifest.Placement
		if p, ok := base[w.Ref]; ok {
			prev = &p
		}
		res := jobs.Step(&w, prev, now)
		w.Indexes, w.Replicas = res.Active, len(res.Active)
		ws = append(ws, w)
		results[w.Ref] = res
		soon(res.Wake)
	}
	for _, w := range set.Workloads {
		if w.Job == nil {
			ws = append(ws, w)
			continue
		}
		stepJob(w)
	}

	cronRecords := map[manifest.Ref]manifest.Placement{}
	for i := range set.CronJobs {
		c := &set.CronJobs[i]
		// The runs of this CronJob on the branch, stepped first so that
		// the CronJob sees the runs' state of this pass.
		var runs []jobs.Run
		for ref, p := range base {
			if ref.Kind != "Job" || ref.Namespace != c.Namespace || p.Job == nil || p.Job.CronJob != c.Name {
				continue
			}
			if _, explicit := set.Workload(ref); explicit {
				continue
			}
			stepJob(c.Run(ref.Name))
			r := results[ref].Record
			run := jobs.Run{Name: ref.Name, Finished: r.Finished(), Failed: r.Condition == manifest.JobFailed}
			if r.ScheduledTime != nil {
				run.ScheduledTime = *r.ScheduledTime
			}
			if r.FinishedTime != nil {
				run.FinishedTime = *r.FinishedTime
			}
			runs = append(runs, run)
		}
		var prev *manifest.CronJobStatus
		if p, ok := base[c.Ref]; ok {
			prev = p.CronJob
		}
		cres := jobs.CronStep(c, prev, runs, now)
		soon(cres.Wake)
		keep := map[string]bool{}
		for _, n := range cres.Keep {
			keep[n] = true
		}
		for _, r := range runs {
			if !keep[r.Name] {
				ref := manifest.Ref{Namespace: c.Namespace, Kind: "Job", Name: r.Name}
				delete(results, ref)
				ws = dropWorkload(ws, ref)
			}
		}
		if cres.Start != "" {
			w := c.Run(cres.Start)
			stepJob(w)
			res := results[w.Ref]
			t := cres.StartScheduled
			res.Record.CronJob, res.Record.ScheduledTime = c.Name, &t
			results[w.Ref] = res
		}
		rec := cres.Record
		cronRecords[c.Ref] = manifest.Placement{Workload: c.Ref, DesiredCommit: commit, SpecHash: c.Template.SpecHash, Replicas: []manifest.ReplicaPlacement{}, CronJob: &rec}
	}

	out := scheduler.Schedule(scheduler.Input{
		DesiredCommit: commit,
		Workloads:     ws,
		Nodes:         nodes,
		Current:       base,
	})
	for ref, p := range out.Placements {
		res, isJob := results[ref]
		if !isJob {
			continue
		}
		p.Replicas = append(p.Replicas, res.Finished...)
		sort.Slice(p.Replicas, func(i, j int) bool { return p.Replicas[i].Index < p.Replicas[j].Index })
		rec := res.Record
		p.Job = &rec
		out.Placements[ref] = p
	}
	for ref, p := range cronRecords {
		out.Placements[ref] = p
	}
	return out.Placements, wake
}

func dropWorkload(ws []manifest.Workload, ref manifest.Ref) []manifest.Workload {
	out := ws[:0]
	for _, w := range ws {
		if w.Ref != ref {
			out = append(out, w)
		}
	}
	return out
}

// workloadOf finds the workload a placement names in set: a workload of
// the commit, or a run of one of its CronJobs.
func workloadOf(set *manifest.Set, p manifest.Placement) (*manifest.Workload, bool) {
	if w, ok := set.Workload(p.Workload); ok {
		return w, true
	}
	if p.Job == nil || p.Job.CronJob == "" {
		return nil, false
	}
	c, ok := set.CronJob(manifest.Ref{Namespace: p.Workload.Namespace, Kind: "CronJob", Name: p.Job.CronJob})
	if !ok {
		return nil, false
	}
	w := c.Run(p.Workload.Name)
	return &w, true
}
