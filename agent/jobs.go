package agent

import (
	"time"

	"driftless.dev/driftless/manifest"
)

// now is the leader's clock for Jobs and CronJobs (Deps.Now in tests).
func (a *Agent) now() time.Time {
	if a.deps.Now != nil {
		return a.deps.Now()
	}
	return time.Now()
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
