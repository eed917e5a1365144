// Package jobs holds the leader's Job and CronJob controllers: pure
// functions from what is committed (a Job's placement with the replica
// phases its nodes reported, a CronJob's record and its runs) and the time
// to what should be committed next. Like Kubernetes' job and cronjob
// controllers they are level-triggered: every count is recomputed from the
// replicas at each pass, so a pass seen twice counts nothing twice.
//
// Decide is the leader's one pass of every controller: the Job and
// CronJob controllers here, the rollout controllers (package rollout),
// then the scheduler with their requests.
//
// It must never do I/O or read a clock: the time is an argument, so tests
// drive hours of schedule in microseconds.
package jobs

import (
	"sort"
	"time"

	"driftless.dev/driftless/manifest"
)

// JobResult is what one pass decides for a Job.
type JobResult struct {
	// Record is the run's record for the placement file.
	Record manifest.JobStatus
	// Finished are the replicas that ended (Succeeded or Failed), kept as
	// they are: their phase is final and they are not placed again.
	Finished []manifest.ReplicaPlacement
	// Active are the indexes of the replicas to place (running, pending or
	// new), at most parallelism.
	Active []int
	// Wake is when time alone changes the result (deadline, TTL); zero
	// when nothing is due.
	Wake time.Time
}

// Terminal reports whether a replica's phase is final for a Job.
func Terminal(st *manifest.ReplicaStatus) bool {
	return st != nil && (st.Phase == manifest.PhaseSucceeded || st.Phase == manifest.PhaseFailed)
}

// Step decides one pass of a Job: w is the Job (w.Job set), prev its
// committed placement with the freshest reported status of each replica
// (nil when the Job is new), now the leader's time.
//
// A run whose template (spec hash) differs from prev's is a new run: the
// counts start over and the old replicas are dropped (Kubernetes refuses
// such an update; Git cannot, so driftless restarts the run), except for a
// finished run of a CronJob, which stays as it ended. Parallelism,
// backoffLimit, activeDeadlineSeconds and ttlSecondsAfterFinished apply to
// the current run, as they are mutable in Kubernetes.
func Step(w *manifest.Workload, prev *manifest.Placement, now time.Time) JobResult {
	now = now.UTC().Truncate(time.Second)
	spec := w.Job
	var res JobResult
	var replicas []manifest.ReplicaPlacement
	// A CronJob's finished run is history: a new template is for the next
	// runs, not a reason to run an old one again.
	if prev != nil && prev.Job != nil && (prev.Job.SpecHash == w.SpecHash || prev.Job.CronJob != "" && prev.Job.Finished()) {
		res.Record = *prev.Job
		replicas = prev.Replicas
	} else {
		next := 0
		var owner string
		var sched *time.Time
		if prev != nil {
			for _, r := range prev.Replicas {
				next = max(next, r.Index+1)
			}
			if prev.Job != nil {
				next = max(next, prev.Job.NextIndex)
				owner, sched = prev.Job.CronJob, prev.Job.ScheduledTime
			}
		}
		res.Record = manifest.JobStatus{SpecHash: w.SpecHash, StartTime: now, NextIndex: next, CronJob: owner, ScheduledTime: sched}
	}
	rec := &res.Record

	if rec.Finished() {
		ttl := spec.TTLSecondsAfterFinished
		if ttl != nil && rec.FinishedTime != nil && !rec.Expired {
			due := rec.FinishedTime.Add(time.Duration(*ttl) * time.Second)
			if !now.Before(due) {
				rec.Expired = true
			} else {
				res.Wake = due
			}
		}
		if !rec.Expired {
			for _, r := range replicas {
				if Terminal(r.Status) {
					res.Finished = append(res.Finished, r)
				}
			}
		}
		rec.Active = 0
		return res
	}

	succeeded, failed := 0, 0
	var active []int
	for _, r := range replicas {
		if r.Status != nil {
			// OnFailure: every in-place restart is a failed attempt.
			failed += r.Status.Restarts
		}
		if Terminal(r.Status) {
			res.Finished = append(res.Finished, r)
			if r.Status.Phase == manifest.PhaseSucceeded {
				succeeded++
			} else {
				failed++
			}
			continue
		}
		active = append(active, r.Index)
	}
	sort.Ints(active)
	rec.Succeeded, rec.Failed = succeeded, failed

	finish := func(cond, reason, msg string) JobResult {
		rec.Condition, rec.Reason, rec.Message = cond, reason, msg
		t := now
		rec.FinishedTime = &t
		if cond == manifest.JobComplete {
			rec.CompletionTime = &t
		}
		rec.Active = 0
		res.Active = nil
		if ttl := spec.TTLSecondsAfterFinished; ttl != nil {
			if *ttl == 0 {
				rec.Expired = true
				res.Finished = nil
			} else {
				res.Wake = t.Add(time.Duration(*ttl) * time.Second)
			}
		}
		return res
	}
	if failed > int(*spec.BackoffLimit) {
		return finish(manifest.JobFailed, manifest.ReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
	}
	// A suspended Job runs nothing (its active replicas are stopped) and
	// its deadline counts from when it is resumed, as in Kubernetes.
	if spec.Suspend != nil && *spec.Suspend {
		rec.Suspended, rec.Active, res.Active = true, 0, []int{}
		return res
	}
	if rec.Suspended {
		rec.Suspended, rec.StartTime = false, now
	}
	if ads := spec.ActiveDeadlineSeconds; ads != nil {
		due := rec.StartTime.Add(time.Duration(*ads) * time.Second)
		if !now.Before(due) {
			return finish(manifest.JobFailed, manifest.ReasonDeadlineExceeded, "Job was active longer than specified deadline")
		}
		res.Wake = due
	}
	if succeeded >= int(*spec.Completions) {
		return finish(manifest.JobComplete, "", "")
	}

	want := min(int(*spec.Parallelism), int(*spec.Completions)-succeeded)
	if len(active) > want {
		// Parallelism was lowered: the newest replicas go first.
		active = active[:want]
	}
	for len(active) < want {
		active = append(active, rec.NextIndex)
		rec.NextIndex++
	}
	rec.Active = len(active)
	res.Active = active
	return res
}
