package jobs

import (
	"sort"
	"time"

	"driftless.dev/driftless/manifest"
)

// Run is what the CronJob controller needs to know of one of its runs.
type Run struct {
	Name          string
	ScheduledTime time.Time
	// Finished and Failed come from the run's Job record.
	Finished     bool
	Failed       bool
	FinishedTime time.Time
}

// CronResult is what one pass decides for a CronJob.
type CronResult struct {
	// Record is the CronJob's record for its placement file.
	Record manifest.CronJobStatus
	// Keep names the existing runs that stay; any other run of the
	// CronJob is removed (history limits, or Replace).
	Keep []string
	// Start names a run to start now ("" for none), scheduled at
	// StartScheduled.
	Start          string
	StartScheduled time.Time
	// Wake is the next schedule time.
	Wake time.Time
}

// CronStep decides one pass of a CronJob, like Kubernetes' cronjob
// controller: c is the CronJob, prev its record (nil when first seen),
// runs the Jobs it started that still exist, now the leader's time.
//
// Only the most recent schedule time not yet started is considered, so
// after a leader outage at most one missed run starts, and only within
// startingDeadlineSeconds of its time when that is set. Forbid skips a
// time while a run is active (it starts later if still within the
// deadline); Replace removes the active runs and starts the new one.
// Finished runs beyond the history limits are removed, oldest first.
func CronStep(c *manifest.CronJobDef, prev *manifest.CronJobStatus, runs []Run, now time.Time) CronResult {
	now = now.UTC().Truncate(time.Second)
	var res CronResult
	if prev != nil {
		res.Record = *prev
	} else {
		res.Record = manifest.CronJobStatus{Since: now}
	}
	rec := &res.Record
	runs = append([]Run(nil), runs...)
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].ScheduledTime.Equal(runs[j].ScheduledTime) {
			return runs[i].ScheduledTime.Before(runs[j].ScheduledTime)
		}
		return runs[i].Name < runs[j].Name
	})

	keep := map[string]bool{}
	var active []string
	var succeeded, failed []Run
	for _, r := range runs {
		switch {
		case !r.Finished:
			active = append(active, r.Name)
			keep[r.Name] = true
		case r.Failed:
			failed = append(failed, r)
		default:
			succeeded = append(succeeded, r)
			if t := r.FinishedTime; !t.IsZero() && (rec.LastSuccessfulTime == nil || t.After(*rec.LastSuccessfulTime)) {
				t := t.UTC()
				rec.LastSuccessfulTime = &t
			}
		}
	}
	for _, r := range newest(succeeded, int(*c.Spec.SuccessfulJobsHistoryLimit)) {
		keep[r.Name] = true
	}
	for _, r := range newest(failed, int(*c.Spec.FailedJobsHistoryLimit)) {
		keep[r.Name] = true
	}

	if !*c.Spec.Suspend {
		from := rec.Since
		if rec.LastScheduleTime != nil {
			from = *rec.LastScheduleTime
		}
		if t, ok := mostRecent(c, from, now); ok {
			name := c.RunName(t)
			exists := false
			for _, r := range runs {
				exists = exists || r.Name == name
			}
			tooLate := c.Spec.StartingDeadlineSeconds != nil && now.Sub(t) > time.Duration(*c.Spec.StartingDeadlineSeconds)*time.Second
			switch {
			case exists:
				// Started before the record said so (a lost status write).
				tt := t.UTC()
				rec.LastScheduleTime = &tt
			case tooLate:
				// Missed: the next schedule time is the next chance.
			case c.Spec.ConcurrencyPolicy == manifest.ConcurrencyForbid && len(active) > 0:
				// Skipped while a run is active; reconsidered at the next
				// pass, within the starting deadline.
			default:
				if c.Spec.ConcurrencyPolicy == manifest.ConcurrencyReplace {
					for _, n := range active {
						delete(keep, n)
					}
					active = nil
				}
				tt := t.UTC()
				rec.LastScheduleTime = &tt
				res.Start, res.StartScheduled = name, tt
				active = append(active, name)
			}
		}
		res.Wake = c.Next(now).UTC()
	}

	rec.Active = active
	rec.Runs = nil
	for _, r := range runs {
		if keep[r.Name] {
			res.Keep = append(res.Keep, r.Name)
			rec.Runs = append(rec.Runs, r.Name)
		}
	}
	if res.Start != "" {
		rec.Runs = append(rec.Runs, res.Start)
	}
	return res
}

// newest returns the last n runs (runs are sorted oldest first).
func newest(runs []Run, n int) []Run {
	if n <= 0 {
		return nil
	}
	if len(runs) > n {
		return runs[len(runs)-n:]
	}
	return runs
}

// mostRecent returns the latest schedule time in (from, now].
//
// Walking the schedule from a time long past (a leader down for a week,
// an every-minute schedule) would cost one step per missed time at every
// pass, so the walk starts from the smallest look-back window before now
// that holds a schedule time.
func mostRecent(c *manifest.CronJobDef, from, now time.Time) (time.Time, bool) {
	if !from.Before(now) {
		return time.Time{}, false
	}
	start := from
	for _, d := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		s := now.Add(-d)
		if !s.After(from) {
			break
		}
		if t := c.Next(s); !t.After(now) {
			start = s
			break
		}
	}
	var last time.Time
	found := false
	for t := c.Next(start); !t.IsZero() && !t.After(now); t = c.Next(t) {
		last, found = t, true
	}
	return last, found
}
