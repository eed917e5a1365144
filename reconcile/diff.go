package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/volumes"
)

// Extra labels the reconciler writes at create time.
const (
	LabelGrace     = "driftless.dev/grace-seconds"
	LabelLogPath   = "driftless.dev/log-path"
	LabelStartedAt = "driftless.dev/started-at"
)

// DesiredReplica is one replica placed on this node, with the defaulted
// pod spec of the desired commit its placement names.
type DesiredReplica struct {
	Workload manifest.Ref
	Index    int
	SpecHash string
	Pod      manifest.PodSpec
	// Labels and Annotations of the pod template (for fieldRef).
	Labels, Annotations map[string]string
	// ConfigMaps and Secrets the pod refers to, by name. Secret values
	// never reach logs.
	ConfigMaps map[string]manifest.ConfigMap
	Secrets    map[string]manifest.Secret
	// Finished marks a Job's replica whose end the leader recorded: its
	// containers are kept (for their logs) but never created, started or
	// restarted again.
	Finished bool
	// Held, when set, says why the replica's spec is not known on this
	// node (the desired commit its placement names does not load here
	// yet): its containers are left exactly as they are, nothing is
	// created for it, and it is reported with ReasonCommitNotLoaded.
	Held string
	// ServiceEnv are the Service variables of the replica's namespace
	// (given when enableServiceLinks is not false), fixed at creation as
	// in Kubernetes: a change does not replace running containers.
	ServiceEnv [][2]string
	// MissingServiceAccount names the ServiceAccount the commit lacks:
	// the replica stays Pending (CreateContainerConfigError).
	MissingServiceAccount string
	// Runtime is the containerd runtime of the replica's RuntimeClass
	// ("": the node's default).
	Runtime string
	// Claims are the bindings of the replica's persistentVolumeClaim
	// volumes, by volume name, as the status branch holds them.
	Claims map[string]ClaimVolume
}

// ClaimVolume is the binding of one persistentVolumeClaim volume, or why
// this node cannot mount it (Err: not bound yet, bound to another node).
type ClaimVolume struct {
	Binding volumes.Binding
	Err     string
}

// ReasonCommitNotLoaded is the status reason of a held replica.
const ReasonCommitNotLoaded = "DesiredCommitNotLoaded"

// Key identifies the replica.
func (d DesiredReplica) Key() ReplicaKey { return ReplicaKey{Workload: d.Workload, Index: d.Index} }

// ReplicaKey identifies one replica of one workload.
type ReplicaKey struct {
	Workload manifest.Ref
	Index    int
}

// Exiter is implemented by runtimes that can report container exits as
// they happen. The agent uses it only to run a pass sooner: every pass
// still lists the actual state.
type Exiter interface {
	Exits(ctx context.Context) (<-chan string, error)
}

// Back-off of restarts and image pulls, as the kubelet does it.
const (
	backoffBase  = 10 * time.Second
	backoffCap   = 5 * time.Minute
	backoffReset = 10 * time.Minute
)

// Backoff returns the delay before restart number n+1 (n restarts so far):
// 10s, 20s, 40s, ... capped at 5 minutes.
func Backoff(n int) time.Duration {
	d := backoffBase
	for i := 0; i < n && d < backoffCap; i++ {
		d *= 2
	}
	if d > backoffCap {
		d = backoffCap
	}
	return d
}

// ContainerID names a container: the workload name first, so that ids
// read well in `ctr` and logs, then a hash of everything that identifies
// it, so that a new spec gets a new id. At most 76 characters.
func ContainerID(ref manifest.Ref, index int, container, specHash string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%s\x00%s", ref.Namespace, ref.Kind, ref.Name, index, container, specHash)))
	h := hex.EncodeToString(sum[:])[:6]
	name := ref.Name
	suffix := fmt.Sprintf("-%d-%s-%s", index, container, h)
	if len(name)+len(suffix) > 76 {
		if keep := 76 - len(suffix); keep > 0 && keep < len(name) {
			name = name[:keep]
		} else if keep <= 0 {
			return fmt.Sprintf("%s-%d-%s", ref.Name[:min(len(ref.Name), 40)], index, h)
		}
	}
	return name + suffix
}

// Plan is what one pass does.
type Plan struct {
	// Remove: containers no longer desired (or of an old spec).
	Remove []RemoveOp
	// Create: replicas with containers to create and start, in container
	// order.
	Create []CreateOp
	// Restart: exited containers whose restart is due.
	Restart []string
	// Stop: sidecars of replicas whose app containers have all finished
	// for good (a Job's), as Kubernetes stops them.
	Stop []RemoveOp
	// Wake is the earliest time a back-off expires (zero: none).
	Wake time.Time
}

// RemoveOp removes one container.
type RemoveOp struct {
	ID    string
	Grace time.Duration
}

// CreateOp creates (and starts) the missing containers of one replica.
type CreateOp struct {
	// Replica points into the desired replicas given to Diff, which must
	// not change while the plan is in use.
	Replica    *DesiredReplica
	Containers []string // container names, in spec order
}

// Empty reports whether the plan does nothing.
func (p Plan) Empty() bool {
	return len(p.Remove) == 0 && len(p.Create) == 0 && len(p.Restart) == 0 && len(p.Stop) == 0
}

// BackoffState is what Diff needs to know of past failures: when an
// exited container was first seen exited (if the runtime does not say),
// and when the image of a replica may be tried again.
type BackoffState struct {
	FirstSeenExited map[string]time.Time
	ImageRetry      map[ReplicaKey]time.Time
	// Unstarted holds running sidecars whose startup probe has not
	// passed yet: the next init container waits for them.
	Unstarted map[string]bool
}

// Diff compares desired replicas with actual containers and returns the
// plan. It is pure: no I/O, no clock (now is an argument).
func Diff(desired []DesiredReplica, actual []Container, st BackoffState, now time.Time) Plan {
	var plan Plan
	byID := make(map[string]Container, len(actual))
	for _, c := range actual {
		byID[c.ID] = c
	}
	wanted := map[string]bool{}
	var held map[ReplicaKey]bool // replicas whose spec is unknown here
	for i := range desired {
		d := &desired[i]
		if d.Held != "" {
			if held == nil {
				held = map[ReplicaKey]bool{}
			}
			held[d.Key()] = true
			continue
		}
		for _, c := range d.Pod.InitContainers {
			wanted[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)] = true
		}
		for _, c := range d.Pod.Containers {
			wanted[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)] = true
		}
		if d.Finished {
			// A Job replica whose end is recorded: its containers stay
			// (for their logs) and are never created or restarted.
			continue
		}
		// consider plans the restart of an exited container (or its
		// wake-up) under policy; it reports whether the container is
		// present.
		consider := func(c manifest.Container, policy string) (present bool) {
			id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
			a, ok := byID[id]
			if !ok {
				return false
			}
			switch a.State {
			case StateCreated:
				plan.Restart = append(plan.Restart, id)
			case StateExited:
				if !shouldRestart(policy, a.ExitCode) {
					return true
				}
				due := RestartDue(a, st.FirstSeenExited[id])
				if !due.After(now) {
					plan.Restart = append(plan.Restart, id)
				} else if plan.Wake.IsZero() || due.Before(plan.Wake) {
					plan.Wake = due
				}
			}
			return true
		}
		var missing []string
		prog := initProgress(*d, byID, st.Unstarted)
		if !prog.Done {
			// One init container at a time, in order.
			if prog.Next >= 0 {
				c := d.Pod.InitContainers[prog.Next]
				if !consider(c, initPolicy(c, d.Pod.RestartPolicy)) {
					missing = append(missing, c.Name)
				}
			}
		} else if appsFinished(*d, byID) {
			for _, c := range d.Pod.InitContainers {
				if a, ok := byID[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)]; ok && c.IsSidecar() && a.State == StateRunning {
					plan.Stop = append(plan.Stop, RemoveOp{ID: a.ID, Grace: graceOf(a)})
				}
			}
		} else {
			for _, c := range d.Pod.InitContainers {
				if c.IsSidecar() && !consider(c, manifest.RestartAlways) {
					missing = append(missing, c.Name)
				}
			}
			for _, c := range d.Pod.Containers {
				if !consider(c, d.Pod.RestartPolicy) {
					missing = append(missing, c.Name)
				}
			}
		}
		if len(missing) > 0 {
			if retry, ok := st.ImageRetry[d.Key()]; ok && retry.After(now) {
				if plan.Wake.IsZero() || retry.Before(plan.Wake) {
					plan.Wake = retry
				}
				continue
			}
			plan.Create = append(plan.Create, CreateOp{Replica: d, Containers: missing})
		}
	}
	for _, a := range actual {
		if wanted[a.ID] || (held != nil && held[containerKey(a)]) {
			continue
		}
		plan.Remove = append(plan.Remove, RemoveOp{ID: a.ID, Grace: graceOf(a)})
	}
	sort.Slice(plan.Remove, func(i, j int) bool { return plan.Remove[i].ID < plan.Remove[j].ID })
	sort.Strings(plan.Restart)
	return plan
}

// InitProgress is where a replica is in running its init containers.
type InitProgress struct {
	// Done: every init container completed (sidecars started), or an app
	// container already exists; app containers may run.
	Done bool
	// Next is the index of the init container to run or wait for; -1
	// when Done or Failed.
	Next int
	// Completed counts the init containers done.
	Completed int
	// Failed: an init container failed and the pod's policy is Never.
	Failed bool
}

// initProgress walks the init containers in order, as the kubelet does.
func initProgress(d DesiredReplica, byID map[string]Container, unstarted map[string]bool) InitProgress {
	for _, c := range d.Pod.Containers {
		if _, ok := byID[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)]; ok {
			return InitProgress{Done: true, Next: -1, Completed: len(d.Pod.InitContainers)}
		}
	}
	for i, c := range d.Pod.InitContainers {
		id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
		a, ok := byID[id]
		switch {
		case ok && c.IsSidecar() && a.State == StateRunning && !unstarted[id]:
			continue
		case ok && !c.IsSidecar() && a.State == StateExited && a.ExitCode == 0:
			continue
		case ok && !c.IsSidecar() && a.State == StateExited && !shouldRestart(initPolicy(c, d.Pod.RestartPolicy), a.ExitCode):
			return InitProgress{Next: -1, Completed: i, Failed: true}
		}
		return InitProgress{Next: i, Completed: i}
	}
	return InitProgress{Done: true, Next: -1, Completed: len(d.Pod.InitContainers)}
}

// appsFinished reports whether every app container of a replica that has
// sidecars exited for good under the pod's restart policy.
func appsFinished(d DesiredReplica, byID map[string]Container) bool {
	hasSidecar := false
	for _, c := range d.Pod.InitContainers {
		hasSidecar = hasSidecar || c.IsSidecar()
	}
	if !hasSidecar {
		return false
	}
	for _, c := range d.Pod.Containers {
		a, ok := byID[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)]
		if !ok || a.State != StateExited || shouldRestart(d.Pod.RestartPolicy, a.ExitCode) {
			return false
		}
	}
	return true
}

// initPolicy is the restart policy of an init container: sidecars always
// restart; others restart on failure unless the pod says Never.
func initPolicy(c manifest.Container, pod string) string {
	switch {
	case c.IsSidecar():
		return manifest.RestartAlways
	case pod == manifest.RestartNever:
		return manifest.RestartNever
	}
	return manifest.RestartOnFailure
}

func shouldRestart(policy string, exit int) bool {
	switch policy {
	case manifest.RestartNever:
		return false
	case manifest.RestartOnFailure:
		return exit != 0
	default:
		return true
	}
}

// RestartDue is when an exited container may be restarted: its finish
// time (or when it was first seen exited) plus the back-off for its
// restart count. A container that ran for 10 minutes starts over at 10s.
func RestartDue(c Container, firstSeen time.Time) time.Time {
	restarts := restartsOf(c)
	finished := c.FinishedAt
	if finished.IsZero() {
		finished = firstSeen
	}
	if !c.StartedAt.IsZero() && !finished.IsZero() && finished.Sub(c.StartedAt) >= backoffReset {
		restarts = 0
	}
	return finished.Add(Backoff(restarts))
}

func restartsOf(c Container) int {
	n, _ := strconv.Atoi(c.Labels[LabelRestarts])
	return n
}

func graceOf(c Container) time.Duration {
	if s, err := strconv.Atoi(c.Labels[LabelGrace]); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return 30 * time.Second
}
