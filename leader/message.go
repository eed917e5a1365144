package leader

import (
	"fmt"
	"sort"
	"strings"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
)

// describe writes the commit message for the change from cur to next: a
// one-line summary a person can read in `git log`, every change in the
// body, and the trailers that point back to the desired commit.
func describe(cur, next *status.State, rej *status.Rejection) *status.Message {
	var lines []string
	if cur.Cluster.Leader != next.Cluster.Leader || cur.Cluster.Term != next.Cluster.Term {
		lines = append(lines, fmt.Sprintf("%s leads (term %d)", next.Cluster.Leader, next.Cluster.Term))
	}
	if rej != nil && (cur.Cluster.LastRejection == nil || cur.Cluster.LastRejection.Commit != rej.Commit) {
		lines = append(lines, fmt.Sprintf("reject %s: %d problem(s)", short(rej.Commit), len(rej.Errors)))
	}
	if cur.Cluster.DesiredCommit != next.Cluster.DesiredCommit && next.Cluster.DesiredCommit != "" {
		lines = append(lines, fmt.Sprintf("apply %s", short(next.Cluster.DesiredCommit)))
	}
	for _, name := range sortedKeys(next.Nodes) {
		if _, ok := cur.Nodes[name]; !ok {
			lines = append(lines, fmt.Sprintf("node %s joins", name))
		}
	}
	refs := manifest.SortedRefs(cur.Placements, next.Placements)
	for _, r := range refs {
		o, had := cur.Placements[r]
		n, has := next.Placements[r]
		name := r.Namespace + "/" + r.Name
		if has && n.CronJob != nil {
			if l := cronChange(o, n, name); l != "" {
				lines = append(lines, l)
			}
			continue
		}
		if has && n.Job != nil {
			if l := jobChange(o, n, name); l != "" {
				lines = append(lines, l)
			}
			for _, rp := range n.Replicas {
				if ph, changed := phaseChange(o, rp); changed && rp.Node != "" {
					lines = append(lines, fmt.Sprintf("  %s[%d] on %s: %s", name, rp.Index, rp.Node, ph))
				}
			}
			continue
		}
		if l := rolloutChange(o, n, name); had && has && l != "" {
			lines = append(lines, l)
			continue
		}
		switch {
		case !has:
			lines = append(lines, fmt.Sprintf("remove %s", name))
		case !had || manifest.Rebound(o, n):
			lines = append(lines, fmt.Sprintf("schedule %s: %s", name, placedOn(n)))
		default:
			for _, rp := range n.Replicas {
				if ph, changed := phaseChange(o, rp); changed {
					lines = append(lines, fmt.Sprintf("%s[%d] on %s: %s", name, rp.Index, rp.Node, ph))
				}
			}
		}
	}
	lines = append(lines, suspendChanges(refs, cur, next)...)
	lines = append(lines, disruptionChanges(refs, cur, next)...)
	lines = append(lines, serviceChanges(cur, next)...)
	lines = append(lines, volumeChanges(cur, next)...)
	if rej != nil && (cur.Cluster.LastRejection == nil || cur.Cluster.LastRejection.Commit != rej.Commit) {
		for _, e := range rej.Errors {
			lines = append(lines, "  "+e)
		}
	}
	if len(lines) == 0 {
		lines = append(lines, "update status")
	}
	m := &status.Message{
		Summary:       lines[0],
		DesiredCommit: next.Cluster.DesiredCommit,
		Leader:        next.Cluster.Leader,
		Term:          next.Cluster.Term,
	}
	if len(lines) > 1 {
		if len(lines) > 2 || !strings.HasPrefix(lines[1], "  ") {
			m.Summary = fmt.Sprintf("%s (+%d more)", lines[0], countTop(lines[1:]))
		}
		m.Body = strings.Join(lines, "\n")
	}
	if len(m.Summary) > 100 {
		m.Summary = m.Summary[:97] + "..."
	}
	return m
}

// jobChange describes a Job's progress: "job ns/pi: 2 active, 1 succeeded,
// 0 failed" while it runs, "job ns/pi: Complete (3 succeeded)" or "job
// ns/pi: Failed (BackoffLimitExceeded)" when it ends.
func jobChange(o, n manifest.Placement, name string) string {
	j := n.Job
	if oj := o.Job; oj != nil && oj.Active == j.Active && oj.Succeeded == j.Succeeded && oj.Failed == j.Failed &&
		oj.Condition == j.Condition && oj.Expired == j.Expired && placedOn(o) == placedOn(n) {
		return ""
	}
	if o.Job != nil && o.Job.Finished() && j.Finished() {
		if j.Expired && !o.Job.Expired {
			return fmt.Sprintf("job %s: replicas removed (ttlSecondsAfterFinished)", name)
		}
		return ""
	}
	switch j.Condition {
	case manifest.JobComplete:
		return fmt.Sprintf("job %s: Complete (%d succeeded, %d failed)", name, j.Succeeded, j.Failed)
	case manifest.JobFailed:
		return fmt.Sprintf("job %s: Failed (%s; %d succeeded, %d failed)", name, j.Reason, j.Succeeded, j.Failed)
	}
	s := fmt.Sprintf("job %s: %d active, %d succeeded, %d failed", name, j.Active, j.Succeeded, j.Failed)
	if p := placedOn(n); j.Active > 0 {
		s += " (" + p + ")"
	}
	return s
}

// cronChange describes a CronJob's record: a run started, or first seen.
func cronChange(o, n manifest.Placement, name string) string {
	c := n.CronJob
	if o.CronJob == nil {
		return fmt.Sprintf("cronjob %s: scheduled", name)
	}
	if t := c.LastScheduleTime; t != nil && (o.CronJob.LastScheduleTime == nil || !t.Equal(*o.CronJob.LastScheduleTime)) {
		return fmt.Sprintf("cronjob %s: run for %s", name, t.UTC().Format("2006-01-02T15:04Z"))
	}
	return ""
}

func countTop(lines []string) int {
	n := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "  ") {
			n++
		}
	}
	return n
}

// placedOn renders "3 replicas on node-a, node-b" (pending ones counted).
func placedOn(p manifest.Placement) string {
	nodes := map[string]bool{}
	pending := 0
	for _, r := range p.Replicas {
		if r.Node == "" {
			pending++
			continue
		}
		nodes[r.Node] = true
	}
	s := fmt.Sprintf("%d replica(s)", len(p.Replicas))
	if len(nodes) > 0 {
		s += " on " + strings.Join(sortedKeys(nodes), ", ")
	}
	if pending > 0 {
		s += fmt.Sprintf(", %d pending", pending)
	}
	return s
}

func phaseChange(old manifest.Placement, r manifest.ReplicaPlacement) (string, bool) {
	var prev *manifest.ReplicaStatus
	for _, o := range old.Replicas {
		if o.Index == r.Index {
			prev = o.Status
		}
	}
	if r.Status == nil {
		return "", false
	}
	desc := r.Status.Phase
	if r.Status.Reason != "" {
		desc += " (" + r.Status.Reason + ")"
	}
	if prev == nil {
		return desc, true
	}
	if prev.Phase != r.Status.Phase || prev.Reason != r.Status.Reason || prev.Ready != r.Status.Ready || prev.Restarts != r.Status.Restarts {
		if r.Status.Restarts != prev.Restarts {
			desc += fmt.Sprintf(", %d restart(s)", r.Status.Restarts)
		}
		return desc, true
	}
	return "", false
}

// rolloutChange describes a rollout step: "roll ns/web: 2/4 updated, 3
// available, 5 placed", "roll ns/web: stalled (ProgressDeadlineExceeded)
// ...", or "" when the record did not move.
func rolloutChange(o, n manifest.Placement, name string) string {
	a, b := o.Rollout, n.Rollout
	if b == nil {
		return ""
	}
	if a != nil && a.SpecHash == b.SpecHash && a.Updated == b.Updated && a.Available == b.Available &&
		a.Total == b.Total && a.Reason == b.Reason && a.Replicas == b.Replicas {
		return ""
	}
	if a == nil && b.Complete() {
		return ""
	}
	switch {
	case b.Stalled():
		return fmt.Sprintf("roll %s: stalled (%s), %d/%d updated, %d available", name, b.Reason, b.Updated, b.Replicas, b.Available)
	case b.Complete():
		return fmt.Sprintf("roll %s: complete, %d/%d updated and available", name, b.Updated, b.Replicas)
	}
	return fmt.Sprintf("roll %s: %d/%d updated, %d available, %d placed", name, b.Updated, b.Replicas, b.Available, b.Total)
}

// serviceChanges says which Services got an address, lost one, went, or
// changed endpoints, one line each.
func serviceChanges(cur, next *status.State) []string {
	var lines []string
	refs := map[manifest.Ref]bool{}
	for r := range cur.Services {
		refs[r] = true
	}
	for r := range next.Services {
		refs[r] = true
	}
	sorted := make([]manifest.Ref, 0, len(refs))
	for r := range refs {
		sorted = append(sorted, r)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].String() < sorted[j].String() })
	for _, r := range sorted {
		o, had := cur.Services[r]
		n, has := next.Services[r]
		name := "service " + r.Namespace + "/" + r.Name
		switch {
		case !has:
			lines = append(lines, "remove "+name)
		case !had || o.ClusterIP != n.ClusterIP || o.Error != n.Error:
			addr := n.ClusterIP
			if n.Error != "" {
				addr = "no address (" + n.Error + ")"
			}
			lines = append(lines, fmt.Sprintf("%s: %s, %d endpoint(s)", name, orNone(addr), len(n.Endpoints)))
		case endpointIPs(o) != endpointIPs(n):
			lines = append(lines, fmt.Sprintf("%s: endpoints %s", name, endpointIPs(n)))
		}
	}
	return lines
}

func endpointIPs(r services.Record) string {
	if len(r.Endpoints) == 0 {
		return "none"
	}
	ips := make([]string, len(r.Endpoints))
	for i, e := range r.Endpoints {
		ips[i] = e.IP
	}
	return strings.Join(ips, ",")
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// volumeChanges says which claims were bound (where), released, or bound
// again, one line each.
func volumeChanges(cur, next *status.State) []string {
	var lines []string
	refs := make([]manifest.Ref, 0, len(next.Volumes))
	for r := range next.Volumes {
		refs = append(refs, r)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, r := range refs {
		o, had := cur.Volumes[r]
		n := next.Volumes[r]
		name := "claim " + r.Namespace + "/" + r.Name
		where := n.Node
		if where == "" {
			where = "shared storage"
		}
		switch {
		case !had || o.Path != n.Path:
			lines = append(lines, fmt.Sprintf("bind %s to %s (%s, %s)", name, where, n.Storage, n.Path))
		case o.Phase != n.Phase:
			lines = append(lines, fmt.Sprintf("%s: %s (data kept on %s)", name, n.Phase, where))
		}
	}
	return lines
}

// disruptionChanges names the replicas preempted by a higher priority
// (with the replica that took their place) and the evictions a
// PodDisruptionBudget starts or stops blocking.
func disruptionChanges(refs []manifest.Ref, cur, next *status.State) []string {
	var lines []string
	for _, ref := range refs {
		was := map[int]manifest.ReplicaPlacement{}
		for _, r := range cur.Placements[ref].Replicas {
			was[r.Index] = r
		}
		name := ref.Namespace + "/" + ref.Name
		for _, r := range next.Placements[ref].Replicas {
			o := was[r.Index]
			if r.Node == "" && o.Node != "" && len(r.Pending) > 0 && strings.HasPrefix(r.Pending[0], scheduler.ReasonPreempted) {
				lines = append(lines, fmt.Sprintf("preempt %s[%d] on %s: %s", name, r.Index, o.Node, r.Pending[0]))
			}
			if r.Disruption != "" && r.Disruption != o.Disruption {
				lines = append(lines, fmt.Sprintf("%s[%d] stays on %s: %s", name, r.Index, r.Node, r.Disruption))
			}
		}
	}
	return lines
}

// suspendChanges names the workloads suspended or resumed.
func suspendChanges(refs []manifest.Ref, cur, next *status.State) []string {
	var lines []string
	for _, ref := range refs {
		o, n := cur.Placements[ref], next.Placements[ref]
		switch name := ref.Namespace + "/" + ref.Name; {
		case n.Suspended && !o.Suspended:
			lines = append(lines, "suspended "+name+": its placement is kept as it is")
		case o.Suspended && !n.Suspended:
			if _, has := next.Placements[ref]; has {
				lines = append(lines, "resumed "+name)
			}
		}
	}
	return lines
}
