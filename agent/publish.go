package agent

import (
	"context"
	"fmt"
	"reflect"
	"sort"

	"driftless.dev/driftless/jobs"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

func keyOf(ref manifest.Ref, idx int) reconcile.ReplicaKey {
	return reconcile.ReplicaKey{Workload: ref, Index: idx}
}

// publishDesired hands the replicas the committed placements bind to this
// node, each with the spec of the commit it was placed with, to the node
// loop. A placement whose commit does not load here (not fetched yet, Git
// unreachable) holds its replicas: their containers are left as they
// are and they are reported with the reason; every other replica is
// reconciled as usual.
func (a *Agent) publishDesired(ctx context.Context) {
	if a.committed == nil {
		return
	}
	recs := a.publishNetwork().recs
	// The Service variables, once per namespace for the whole pass.
	envOf := map[string][][2]string{}
	serviceEnv := func(ns string) [][2]string {
		env, ok := envOf[ns]
		if !ok {
			env = services.EnvVars(recs, ns)
			envOf[ns] = env
		}
		return env
	}
	var desired []reconcile.DesiredReplica
	commits := map[string]bool{}
	for _, p := range a.committed.Placements {
		for _, r := range p.Replicas {
			if r.Node != a.cfg.Node {
				continue
			}
			// During a rollout an old replica runs the template of the
			// commit it was placed with.
			commit := p.CommitOf(r)
			commits[commit] = true
			set, ok := a.view.sets[commit]
			if !ok {
				desired = append(desired, reconcile.DesiredReplica{Workload: p.Workload, Index: r.Index, SpecHash: r.SpecHash, Held: heldReason(a.view, commit)})
				continue
			}
			w, ok := workloadOf(set, p)
			if !ok {
				continue
			}
			finished := p.Job != nil && jobs.Terminal(r.Status)
			desired = append(desired, reconcile.DesiredReplica{
				Workload:    p.Workload,
				Index:       r.Index,
				SpecHash:    w.SpecHash,
				Pod:         w.Template.Spec,
				Labels:      w.Template.Metadata.Labels,
				Annotations: w.Template.Metadata.Annotations,
				ConfigMaps:  w.ConfigMaps,
				Secrets:     w.Secrets,
				Finished:    finished,
				ServiceEnv:  serviceEnv(p.Workload.Namespace),
				Claims:      claimVolumes(a.committed, a.cfg.Node, w, r.Index),
				Runtime:     w.Runtime,

				MissingServiceAccount: w.MissingServiceAccount,
			})
		}
	}
	// The intake loads what placements name (fetching what this node
	// lacks); its answer wakes the main loop, which publishes again.
	a.wantCommits(commits, a.committed.Cluster.DesiredCommit)
	in := nodeInput{desired: desired, desiredCommit: a.committed.Cluster.DesiredCommit}
	for _, b := range a.committed.Volumes {
		if b.Phase == volumes.Deleting && b.Node == a.cfg.Node {
			in.deleteClaims = append(in.deleteClaims, b)
		}
	}
	sort.Slice(in.deleteClaims, func(i, j int) bool { return in.deleteClaims[i].Path < in.deleteClaims[j].Path })
	if prev, ok := a.nodeIn.Get(); ok && prev.desiredCommit == in.desiredCommit && reflect.DeepEqual(prev.desired, in.desired) && reflect.DeepEqual(prev.deleteClaims, in.deleteClaims) {
		return
	}
	a.nodeIn.Put(in)
}

// claimVolumes are the bindings of replica index's claims as the status
// branch holds them, or why this node cannot mount one.
func claimVolumes(st *status.State, node string, w *manifest.Workload, index int) map[string]reconcile.ClaimVolume {
	rcs := w.ReplicaClaims(index)
	if len(rcs) == 0 {
		return nil
	}
	out := make(map[string]reconcile.ClaimVolume, len(rcs))
	for _, rc := range rcs {
		var cv reconcile.ClaimVolume
		b, ok := st.Volumes[volumes.ClaimRef(rc.Claim.Namespace, rc.Claim.Name)]
		switch {
		case rc.Missing:
			cv.Err = fmt.Sprintf("persistentvolumeclaim %q not found", rc.Claim.Name)
		case !ok:
			cv.Err = fmt.Sprintf("claim %s is not bound yet", rc.Claim.Name)
		case b.Node != "" && b.Node != node:
			cv.Err = fmt.Sprintf("claim %s is bound to node %s", rc.Claim.Name, b.Node)
		default:
			cv.Binding = b
		}
		out[rc.Volume] = cv
	}
	return out
}
