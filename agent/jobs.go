package agent

import (
	"strings"
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
				// A report of another template (the node has not
				// replaced the replica yet) says nothing of this one.
				if o.SpecHash != "" && o.SpecHash != r.SpecHash {
					continue
				}
				o.SpecHash = ""
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
		o, ok := a.observedHere()[reconcile.ReplicaKey{Workload: ref, Index: r.Index}]
		return o, ok
	}
	o, ok := reports[r.Node][reportKey(ref, r.Index)]
	return o, ok
}

// place runs the Job and CronJob controllers and the scheduler on cur
// with the nodes' reports.
func (a *Agent) place(cur *status.State, nodes []scheduler.Node, now time.Time, policy scheduler.Policy) (map[manifest.Ref]manifest.Placement, time.Time) {
	return jobs.Place(jobs.Input{
		Policy:        policy,
		Set:           a.inForce.set,
		DesiredCommit: a.inForce.rev.Commit,
		Current:       a.observedPlacements(cur),
		Nodes:         nodes,
		Now:           now,
		Lingering:     a.lingering(cur),
	})
}

// lingering counts, per workload, the replicas that alive nodes (this one
// included) still report although cur binds them elsewhere or not at
// all: containers a node has not stopped yet.
func (a *Agent) lingering(cur *status.State) map[manifest.Ref]int {
	bound := map[string]bool{} // node + "\x00" + report key
	refs := map[string]manifest.Ref{}
	for ref, p := range cur.Placements {
		refs[ref.String()] = ref
		for _, r := range p.Replicas {
			if r.Node != "" {
				bound[r.Node+"\x00"+reportKey(ref, r.Index)] = true
			}
		}
	}
	out := map[manifest.Ref]int{}
	count := func(node, key string) {
		if bound[node+"\x00"+key] {
			return
		}
		if i := strings.LastIndexByte(key, '/'); i > 0 {
			if ref, ok := refs[key[:i]]; ok {
				out[ref]++
			}
		}
	}
	for k := range a.observedHere() {
		count(a.cfg.Node, reportKey(k.Workload, k.Index))
	}
	if a.deps.Cluster != nil {
		ms := a.members()
		for n, r := range a.deps.Cluster.Reports() {
			if n == a.cfg.Node || !aliveIn(ms, n) {
				continue
			}
			for k := range r.Replicas {
				count(n, k)
			}
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
