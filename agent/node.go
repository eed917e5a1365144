package agent

import (
	"context"
	"reflect"
	"time"

	"driftless.dev/driftless/internal/backoff"
	"driftless.dev/driftless/leader"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/metrics"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/volumes"
)

// nodeInput is what the node loop drives the containers toward: the
// replicas placed on this node, each with its spec, as of one status
// commit. Published whole by the main loop, never changed afterwards.
type nodeInput struct {
	// desired holds the replicas, Held where their commit does not load.
	desired []reconcile.DesiredReplica
	// desiredCommit is the commit the status commit names (for Reached).
	desiredCommit string
	// deleteClaims are this node's bindings whose data is to be deleted
	// (phase Deleting).
	deleteClaims []volumes.Binding
}

// nodeView is what the node loop last observed, published whole for the
// main loop (leader, reports) and the HTTP API. Never changed afterwards.
type nodeView struct {
	observed map[reconcile.ReplicaKey]manifest.ReplicaStatus
	// reached is the desired commit whose placements here all run.
	reached string
}

// nodeLoop owns the Reconciler: it runs a pass whenever the desired
// replicas change, a container exits, a probe or a replica's work
// reports a change, a back-off expires, or at the latest every Resync.
// It never touches Git and never waits for the main loop: it works from
// the newest nodeInput, whatever the main loop is doing. Slow work
// (stops, pulls) runs on the reconciler's replica workers.
func (a *Agent) nodeLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	fails := 0
	retry := backoff.Backoff{Base: 2 * time.Second, Max: 32 * time.Second} // after a failed pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.nodeIn.Ready():
		case <-a.deps.Exits:
		case <-a.deps.ImagesChanged:
			a.deps.Reconciler.RetryImagePulls()
		case <-a.nodeKick:
		case <-timer.C:
		}
		in, ok := a.nodeIn.Get()
		if !ok {
			// Nothing committed read yet: touch nothing.
			timer.Reset(a.cfg.Resync.Duration)
			continue
		}
		start := time.Now()
		obs, err := a.deps.Reconciler.Sync(ctx, in.desired)
		a.deps.Metrics.Loop(metrics.LoopNode, time.Since(start))
		obs = withNetworkProblem(obs, a.netProblem.Load())
		if err == nil {
			a.deleteClaimData(in)
		}
		next := a.cfg.Resync.Duration
		if err != nil {
			fails++
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("reconcile pass failed", "err", err, "failures", fails)
			a.setRuntimeError(err.Error())
			next = min(next, retry.Next())
		} else {
			if fails > 0 {
				a.log.Info("container runtime reachable again")
			}
			fails = 0
			retry.Reset()
			a.setRuntimeError("")
			prev, seen := a.nodeOut.Get()
			view := nodeView{observed: obs, reached: prev.reached}
			if converged(in.desired, obs) {
				view.reached = in.desiredCommit
			}
			a.deps.Metrics.Observed(observedReplicas(obs))
			// Wake the main loop (the leader commits what changed) and
			// tell the other nodes only when something did.
			if !seen || view.reached != prev.reached || !reflect.DeepEqual(view.observed, prev.observed) {
				a.nodeOut.Put(view)
				a.report(view)
			}
		}
		a.passes.Add(1)
		if t := a.deps.Reconciler.NextWake(); !t.IsZero() {
			next = min(next, time.Until(t))
		}
		timer.Reset(max(next, 50*time.Millisecond))
	}
}

// withNetworkProblem notes on each running replica that this node's
// Service rules or pod routes could not be installed (the replicas run;
// what reaches them through a Service or from another node may not).
// obs is not changed: a copy is returned when there is something to say.
func withNetworkProblem(obs map[reconcile.ReplicaKey]manifest.ReplicaStatus, problem *string) map[reconcile.ReplicaKey]manifest.ReplicaStatus {
	if problem == nil || *problem == "" {
		return obs
	}
	out := make(map[reconcile.ReplicaKey]manifest.ReplicaStatus, len(obs))
	for k, o := range obs {
		if o.Phase == manifest.PhaseRunning && o.Message == "" {
			o.Reason, o.Message = ReasonNodeNetwork, *problem
		}
		out[k] = o
	}
	return out
}

// ReasonNodeNetwork is the reason on a running replica whose node could
// not install its Service rules or pod routes.
const ReasonNodeNetwork = "NodeNetworkNotProgrammed"

// observedHere is the node loop's newest observation of this node's
// replicas (nil before the first pass). The map is never changed.
func (a *Agent) observedHere() map[reconcile.ReplicaKey]manifest.ReplicaStatus {
	v, _ := a.nodeOut.Get()
	return v.observed
}

// reachedHere is the desired commit whose placements here all run.
func (a *Agent) reachedHere() string {
	v, _ := a.nodeOut.Get()
	return v.reached
}

// converged reports whether every desired replica runs and is ready, or
// has finished (a Job's).
func converged(desired []reconcile.DesiredReplica, obs map[reconcile.ReplicaKey]manifest.ReplicaStatus) bool {
	for _, d := range desired {
		o, ok := obs[reconcile.ReplicaKey{Workload: d.Workload, Index: d.Index}]
		switch {
		case !ok || d.Held != "":
			return false
		case o.Phase == manifest.PhaseSucceeded || (d.Finished && o.Phase == manifest.PhaseFailed):
		case o.Phase != manifest.PhaseRunning || !o.Ready:
			return false
		}
	}
	return true
}

// report publishes this node's observed replicas to the leader by gossip.
// Gossip sends on its own goroutine (and again to nodes that join): this
// never blocks.
func (a *Agent) report(v nodeView) {
	if a.deps.Cluster == nil {
		return
	}
	r := make(map[string]manifest.ReplicaStatus, len(v.observed))
	for k, o := range v.observed {
		r[leader.ReportKey(k.Workload, k.Index)] = o
	}
	a.deps.Cluster.SetReport(r, v.reached)
}

// deleteClaimData deletes the directories of this node's claims whose
// bindings say Deleting, unless a desired replica here still mounts one
// (the leader decided from an older view). Each is deleted once per run,
// on a goroutine of its own: removing a large directory never holds up
// the node loop.
func (a *Agent) deleteClaimData(in nodeInput) {
	if a.deps.Claims == nil {
		return
	}
	for _, b := range in.deleteClaims {
		if mountedBy(in.desired, b) {
			continue
		}
		if _, busy := a.claimsDeleted.LoadOrStore(b.Path, true); busy {
			continue
		}
		go func() {
			name := b.Claim.Namespace + "/" + b.Claim.Name
			if err := a.deps.Claims.Delete(b); err != nil {
				a.log.Warn("claim data not deleted", "claim", name, "err", err)
				a.claimsDeleted.Delete(b.Path) // tried again at the next pass
				return
			}
			a.log.Info("claim data deleted (reclaim policy Delete)", "claim", name, "path", b.Path)
		}()
	}
}

func mountedBy(desired []reconcile.DesiredReplica, b volumes.Binding) bool {
	for _, d := range desired {
		for _, c := range d.Claims {
			if c.Binding.Path == b.Path {
				return true
			}
		}
	}
	return false
}

func observedReplicas(obs map[reconcile.ReplicaKey]manifest.ReplicaStatus) []metrics.Replica {
	out := make([]metrics.Replica, 0, len(obs))
	for k, o := range obs {
		out = append(out, metrics.Replica{Workload: k.Workload, Index: k.Index, Status: o})
	}
	return out
}
