package manifest

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Ref names one workload of the desired state.
type Ref struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

// String renders a ref as "namespace/Kind/name".
func (r Ref) String() string { return fmt.Sprintf("%s/%s/%s", r.Namespace, r.Kind, r.Name) }

// PodName is a replica's metadata.name and default hostname: a Pod's own
// name, as in Kubernetes; for the replicas of a controller, the
// workload's name and the replica index (a StatefulSet's ordinal: web-0),
// cut to a DNS label.
func PodName(ref Ref, index int) string {
	if ref.Kind == "Pod" {
		return ref.Name
	}
	h := fmt.Sprintf("%s-%d", ref.Name, index)
	if len(h) > 63 {
		h = h[len(h)-63:]
	}
	return strings.Trim(h, "-.")
}

// Replica phases, as Kubernetes names pod phases.
const (
	PhasePending   = "Pending"
	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
	PhaseUnknown   = "Unknown"
)

// Placement is the binding of a workload's replicas to nodes, the record the
// scheduler produces, the status branch stores and every node's reconciler
// consumes (like spec.nodeName in Kubernetes). It names the desired commit
// whose spec the replicas run, so a node never runs a spec the scheduler has
// not placed.
type Placement struct {
	Workload      Ref                `json:"workload"`
	DesiredCommit string             `json:"desiredCommit"`
	SpecHash      string             `json:"specHash"`
	Replicas      []ReplicaPlacement `json:"replicas"`
	// Job is the progress of a Job's run (Jobs only).
	Job *JobStatus `json:"job,omitempty"`
	// CronJob is the schedule record of a CronJob (CronJobs only; a
	// CronJob has no replicas of its own).
	CronJob *CronJobStatus `json:"cronJob,omitempty"`
	// Rollout is the progress of replacing the replicas of a Deployment
	// or DaemonSet by its current template.
	Rollout *RolloutStatus `json:"rollout,omitempty"`
	// Suspended: the workload is suspended (driftless suspend); this
	// placement is kept as it was when it was suspended.
	Suspended bool `json:"suspended,omitempty"`
}

// CommitOf is the desired commit whose template replica r runs: its own
// during a rollout, else the placement's.
func (p *Placement) CommitOf(r ReplicaPlacement) string {
	if r.DesiredCommit != "" {
		return r.DesiredCommit
	}
	return p.DesiredCommit
}

// Job conditions and reasons, as Kubernetes names them.
const (
	JobComplete = "Complete"
	JobFailed   = "Failed"

	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     = "DeadlineExceeded"
)

// JobStatus is the leader's record of one run of a Job: the counts it
// decides from, and how the run ended. It is recomputed from the replicas
// of the placement at every pass, so it never double-counts.
type JobStatus struct {
	// SpecHash is the template the run was started with; a different
	// template starts a new run.
	SpecHash string `json:"specHash"`
	// CronJob names the CronJob that started this run, if any.
	CronJob string `json:"cronJob,omitempty"`
	// ScheduledTime is the CronJob schedule time of this run.
	ScheduledTime *time.Time `json:"scheduledTime,omitempty"`
	StartTime     time.Time  `json:"startTime"`
	Active        int        `json:"active"`
	Succeeded     int        `json:"succeeded"`
	// Failed counts failed replicas (restartPolicy Never) and in-place
	// restarts (OnFailure).
	Failed int `json:"failed"`
	// NextIndex is the index the next new replica gets: indexes are never
	// reused, not even across runs, so a node's report is never mistaken
	// for a replica's that it did not run.
	NextIndex int `json:"nextIndex"`
	// Condition is Complete or Failed once the run is over.
	Condition      string     `json:"condition,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	Message        string     `json:"message,omitempty"`
	CompletionTime *time.Time `json:"completionTime,omitempty"`
	// FinishedTime is when Condition was set; ttlSecondsAfterFinished
	// counts from it.
	FinishedTime *time.Time `json:"finishedTime,omitempty"`
	// Suspended: spec.suspend holds the run (nothing runs; the deadline
	// counts again from the resume).
	Suspended bool `json:"suspended,omitempty"`
	// Expired: the TTL after finishing has passed and the replicas were
	// removed from the nodes; this record stays.
	Expired bool `json:"expired,omitempty"`
}

// Finished reports whether the run is over.
func (j *JobStatus) Finished() bool { return j != nil && j.Condition != "" }

// CronJobStatus is the leader's record of one CronJob.
type CronJobStatus struct {
	// Since is when a leader first saw the CronJob: no run is scheduled
	// for an earlier time.
	Since time.Time `json:"since"`
	// LastScheduleTime is the schedule time of the newest run started.
	LastScheduleTime   *time.Time `json:"lastScheduleTime,omitempty"`
	LastSuccessfulTime *time.Time `json:"lastSuccessfulTime,omitempty"`
	// Active names the runs (Jobs) not finished yet.
	Active []string `json:"active,omitempty"`
	// Runs names every run kept (active and history), oldest first.
	Runs []string `json:"runs,omitempty"`
}

// Revision is the template an old replica keeps while it waits for its
// turn in a rollout.
type Revision struct {
	SpecHash string
	// Commit is the desired commit that template comes from.
	Commit string
}

// ReplicaPlacement binds one replica (by index) to a node.
type ReplicaPlacement struct {
	Index int `json:"index"`
	// Node is the node the replica runs on; empty while it is pending.
	Node string `json:"node,omitempty"`
	// SpecHash is the template hash this replica runs (it differs from the
	// workload's during a rollout).
	SpecHash string `json:"specHash"`
	// DesiredCommit, when set, is the commit whose template this replica
	// runs: an old replica waiting its turn in a rollout. Empty means the
	// placement's.
	DesiredCommit string `json:"desiredCommit,omitempty"`
	// ReadySince is when the leader first saw the replica ready on its
	// current template; minReadySeconds counts from it.
	ReadySince *time.Time `json:"readySince,omitempty"`
	// Pending lists why no node fits, when Node is empty.
	Pending []string `json:"pending,omitempty"`
	// Disruption says why a replica stays on a node that evicts it (a
	// drain, a NoExecute taint): the PodDisruptionBudget that allows no
	// disruption now.
	Disruption string `json:"disruption,omitempty"`
	// Status is the last observed state reported by the node. For a Job's
	// replica, Succeeded and Failed are final.
	Status *ReplicaStatus `json:"status,omitempty"`
}

// ReplicaStatus is what a node observed of one replica.
type ReplicaStatus struct {
	// SpecHash is the template the node observed the replica on; it is
	// carried by the node's report so that a report of the old template
	// is never taken for the new one, and not committed.
	SpecHash string `json:"specHash,omitempty"`
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts,omitempty"`
	// Reason is a short CamelCase word (ErrImagePull, CrashLoopBackOff, ...).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// PodIP is the replica's address: its network's (CNI), the host's
	// with hostNetwork, empty before its network is set up.
	PodIP string `json:"podIP,omitempty"`
}

// Nodes lists the node of each replica, in replica order ("" for one
// that is pending).
func (p Placement) Nodes() []string {
	out := make([]string, 0, len(p.Replicas))
	for _, r := range p.Replicas {
		out = append(out, r.Node)
	}
	return out
}

// SortedRefs lists every workload that has a placement in a or in b, in
// the order of their names (namespace/Kind/name): the order in which the
// change between two sets of placements is described.
func SortedRefs(a, b map[Ref]Placement) []Ref {
	type keyed struct {
		ref Ref
		key string
	}
	seen := make(map[Ref]bool, len(a)+len(b))
	ks := make([]keyed, 0, len(a)+len(b))
	for _, m := range []map[Ref]Placement{a, b} {
		for r := range m {
			if !seen[r] {
				seen[r] = true
				ks = append(ks, keyed{r, r.Namespace + "/" + r.Kind + "/" + r.Name})
			}
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
	out := make([]Ref, len(ks))
	for i, k := range ks {
		out[i] = k.ref
	}
	return out
}

// Rebound reports whether n binds the workload differently from o: a new
// template, or any replica (by index) added, removed, or on another node
// (two replicas swapping nodes included). The commit message, `driftless
// history` and `driftless plan` all call a placement changed by this one
// rule.
func Rebound(o, n Placement) bool {
	if o.SpecHash != n.SpecHash || len(o.Replicas) != len(n.Replicas) {
		return true
	}
	was := make(map[int]string, len(o.Replicas))
	for _, r := range o.Replicas {
		was[r.Index] = r.Node
	}
	for _, r := range n.Replicas {
		if node, ok := was[r.Index]; !ok || node != r.Node {
			return true
		}
	}
	return false
}
