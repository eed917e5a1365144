package jobs

import (
	"sort"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/rollout"
	"driftless.dev/driftless/scheduler"
)

// Input is what one pass of the leader's controllers reads.
type Input struct {
	Set           *manifest.Set
	DesiredCommit string
	// Current are the committed placements with the freshest status the
	// nodes reported for each replica.
	Current map[manifest.Ref]manifest.Placement
	Nodes   []scheduler.Node
	Now     time.Time
	// Policy is the scheduler's scoring policy.
	Policy scheduler.Policy
	// Lingering counts, per workload, replicas nodes still report
	// running that no placement binds (scheduler.Input.Lingering).
	Lingering map[manifest.Ref]int
	// ClaimNodes are the nodes of node-local claims
	// (scheduler.Input.ClaimNodes).
	ClaimNodes map[string]string
	// VolumesUsed is the size of the claims bound on each node.
	VolumesUsed map[string]int64
}

// Result is what one pass of the controllers and the scheduler decided.
type Result struct {
	Placements map[manifest.Ref]manifest.Placement
	// Wake is when time alone changes the placements (zero: never).
	Wake time.Time
	// Claims bound or used by the replicas placed.
	Claims scheduler.Claims
}

// Place runs the Job and CronJob controllers, then the scheduler, and
// returns the placements the leader wants (Job and CronJob records
// included) and when time alone will change them (a deadline, a TTL, a
// schedule time, a rollout's minReadySeconds or progress deadline; zero
// for never). Like the scheduler it is pure.
func Place(in Input) (map[manifest.Ref]manifest.Placement, time.Time) {
	r := Decide(in)
	return r.Placements, r.Wake
}

// Decide is Place with the claims the scheduler bound.
func Decide(in Input) Result {
	set, commit, base, nodes, now := in.Set, in.DesiredCommit, in.Current, in.Nodes, in.Now
	var wake time.Time
	soon := func(t time.Time) {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	ws := make([]manifest.Workload, 0, len(set.Workloads))
	results := map[manifest.Ref]JobResult{}
	requests := map[manifest.Ref]scheduler.Request{}
	stepJob := func(w manifest.Workload) {
		var prev *manifest.Placement
		if p, ok := base[w.Ref]; ok {
			prev = &p
		}
		res := Step(&w, prev, now)
		// Never nil: a Job with no active replica places none.
		requests[w.Ref] = scheduler.Request{Indexes: append([]int{}, res.Active...)}
		ws = append(ws, w)
		results[w.Ref] = res
		soon(res.Wake)
	}
	frozen := map[manifest.Ref]bool{}
	for _, w := range set.Workloads {
		if w.Suspended {
			frozen[w.Ref] = true
		}
		if w.Job == nil || w.Suspended {
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
		var runs []Run
		for ref, p := range base {
			if ref.Kind != "Job" || ref.Namespace != c.Namespace || p.Job == nil || p.Job.CronJob != c.Name {
				continue
			}
			if _, explicit := set.Workload(ref); explicit {
				continue
			}
			stepJob(c.Run(ref.Name))
			r := results[ref].Record
			run := Run{Name: ref.Name, Finished: r.Finished(), Failed: r.Condition == manifest.JobFailed}
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
		cres := CronStep(c, prev, runs, now)
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

	// The rollout controllers decide which replicas of Deployments,
	// DaemonSets and StatefulSets exist and which keep their template.
	var rolling []manifest.Workload
	for _, w := range ws {
		if !frozen[w.Ref] {
			rolling = append(rolling, w)
		}
	}
	steps := rollout.Plan(rolling, base, in.Lingering, now)
	requests = rollout.Requests(steps, requests)
	out := scheduler.Schedule(scheduler.Input{
		Policy:        in.Policy,
		DesiredCommit: commit,
		Workloads:     ws,
		Nodes:         nodes,
		Current:       base,
		Now:           now,
		Requests:      requests,
		Frozen:        frozen,
		ClaimNodes:    in.ClaimNodes,
		Budgets:       set.Budgets,
		VolumesUsed:   in.VolumesUsed,
	})
	soon(rollout.Finish(ws, steps, base, out.Placements, now))
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
	return Result{Placements: out.Placements, Wake: wake, Claims: out.Claims}
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
