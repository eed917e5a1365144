package reconcile

import (
	"fmt"
	"strings"
	"time"

	"driftless.dev/driftless/manifest"
)

// observe computes each desired replica's status from the containers
// and the probe results.
func (r *Reconciler) observe(desired []DesiredReplica, actual []Container, plan Plan) map[ReplicaKey]manifest.ReplicaStatus {
	byID := map[string]Container{}
	for _, c := range actual {
		byID[c.ID] = c
	}
	now := r.cfg.Now()
	r.mu.Lock()
	lastErr := make(map[ReplicaKey]manifest.ReplicaStatus, len(r.lastErr))
	for k, v := range r.lastErr {
		lastErr[k] = v
	}
	r.mu.Unlock()
	out := make(map[ReplicaKey]manifest.ReplicaStatus, len(desired))
	for _, d := range desired {
		key := d.Key()
		if d.Held != "" {
			out[key] = r.observeHeld(d, actual)
			continue
		}
		st := manifest.ReplicaStatus{SpecHash: d.SpecHash, PodIP: r.podIP(d)}
		for _, c := range d.Pod.InitContainers {
			if a, ok := byID[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)]; ok {
				st.Restarts += restartsOf(a)
			}
		}
		if prog := initProgress(d, byID, r.backoffState([]DesiredReplica{d}).Unstarted); !prog.Done {
			st.Phase = manifest.PhasePending
			n := len(d.Pod.InitContainers)
			st.Reason = fmt.Sprintf("Init:%d/%d", prog.Completed, n)
			if prog.Failed {
				st.Phase, st.Reason = manifest.PhaseFailed, "Init:Error"
			} else {
				c := d.Pod.InitContainers[prog.Next]
				a, ok := byID[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)]
				if ok && a.State == StateExited && a.ExitCode != 0 {
					st.Reason = "Init:CrashLoopBackOff"
					st.Message = fmt.Sprintf("init container %s: last exit code %d", c.Name, a.ExitCode)
				} else if !ok {
					if e, ok := lastErr[key]; ok {
						st.Reason, st.Message = e.Reason, e.Message
					}
				}
			}
			out[key] = st
			continue
		}
		running, succeeded, failed, missing, waiting := 0, 0, 0, 0, 0
		var lastExit int
		var lastMsg string
		var unready []string
		for _, c := range d.Pod.InitContainers {
			id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
			if a, ok := byID[id]; c.IsSidecar() && (!ok || a.State != StateRunning || !r.probes.ready(id, c)) {
				unready = append(unready, c.Name)
			}
		}
		for _, c := range d.Pod.Containers {
			id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
			a, ok := byID[id]
			if !ok {
				missing++
				continue
			}
			st.Restarts += restartsOf(a)
			switch a.State {
			case StateRunning:
				running++
				if !r.probes.ready(id, c) {
					unready = append(unready, c.Name)
				}
			case StateExited:
				lastExit = a.ExitCode
				if m := r.terminationMessage(d, c, id, a.ExitCode); m != "" {
					lastMsg = m
				}
				if shouldRestart(d.Pod.RestartPolicy, a.ExitCode) {
					waiting++
				} else if a.ExitCode == 0 {
					succeeded++
				} else {
					failed++
				}
			default:
				missing++
			}
		}
		n := len(d.Pod.Containers)
		switch {
		case missing > 0:
			st.Phase = manifest.PhasePending
			st.Reason = "ContainerCreating"
			if e, ok := lastErr[key]; ok {
				st.Reason, st.Message = e.Reason, e.Message
			}
		case running == n && len(unready) == 0:
			st.Phase, st.Ready = manifest.PhaseRunning, true
		case running == n:
			st.Phase, st.Reason = manifest.PhaseRunning, "ContainersNotReady"
			st.Message = "containers with unready status: " + strings.Join(unready, ", ")
		case succeeded == n:
			st.Phase, st.Reason = manifest.PhaseSucceeded, "Completed"
		case failed > 0 && running == 0 && waiting == 0:
			st.Phase, st.Reason, st.Message = manifest.PhaseFailed, "Error", fmt.Sprintf("exit code %d", lastExit)
		case waiting > 0:
			st.Phase, st.Reason = manifest.PhaseRunning, "CrashLoopBackOff"
			st.Message = fmt.Sprintf("last exit code %d", lastExit)
			if !plan.Wake.IsZero() {
				st.Message += fmt.Sprintf(", restarting in %s", plan.Wake.Sub(now).Round(time.Second))
			}
		default:
			st.Phase = manifest.PhaseRunning
		}
		// The countdown is not part of what is committed.
		if st.Reason == "CrashLoopBackOff" {
			st.Message = fmt.Sprintf("last exit code %d", lastExit)
		}
		if lastMsg != "" && (st.Reason == "CrashLoopBackOff" || st.Reason == "Error" || st.Reason == "Completed") {
			if st.Message != "" {
				st.Message += ": "
			}
			st.Message += lastMsg
		}
		out[key] = st
	}
	return out
}

// observeHeld is the status of a replica whose spec is not known here:
// Pending, or Running (not ready: nothing probes it) while containers of
// an earlier spec still run.
func (r *Reconciler) observeHeld(d DesiredReplica, actual []Container) manifest.ReplicaStatus {
	st := manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: ReasonCommitNotLoaded, Message: d.Held}
	for _, c := range actual {
		if containerKey(c) == d.Key() && c.State == StateRunning {
			st.Phase = manifest.PhaseRunning
			st.SpecHash = c.Labels[LabelSpecHash]
		}
	}
	return st
}
