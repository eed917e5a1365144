package manifest

import "sort"

// Workload is a workload of the desired state, normalised: whatever its
// kind, a number of replicas of one defaulted pod template.
type Workload struct {
	Ref
	File string
	Line int
	// Replicas is the desired replica count (a Job: the most that run at
	// once, min(parallelism, completions); its controller's request to
	// the scheduler names which); unused when PerNode is set.
	Replicas int
	// PerNode places one replica on every feasible node (DaemonSet).
	PerNode bool
	// Template is the defaulted pod template every replica runs.
	Template PodTemplateSpec
	// SpecHash is a stable hash of Template: it changes when and only when
	// what a replica runs changes.
	SpecHash string
	// Job is set for Jobs (defaulted).
	Job *JobSpec
	// Rollout is how a changed template replaces the replicas of a
	// Deployment or DaemonSet (defaulted); nil replaces them all at once.
	Rollout *RolloutSpec
	// ConfigMaps and Secrets are those of the commit the template refers
	// to (env, envFrom, volumes), by name. Their content is part of
	// SpecHash, so a change to one replaces the replicas that use it.
	ConfigMaps map[string]ConfigMap `json:"-"`
	Secrets    map[string]Secret    `json:"-"`
	// MissingServiceAccount names the ServiceAccount the template runs as
	// when the commit lacks it: the replicas stay Pending.
	MissingServiceAccount string `json:"-"`
	// Stateful is set for StatefulSets (ordinals, pod management,
	// partition); their replica indexes are their ordinals.
	Stateful *StatefulSpec `json:"-"`
	// ClaimTemplates are a StatefulSet's volumeClaimTemplates by name,
	// Claims the claims of the commit its persistentVolumeClaim volumes
	// name (a missing one is absent); see ReplicaClaims.
	ClaimTemplates map[string]Claim `json:"-"`
	Claims         map[string]Claim `json:"-"`
	// Priority is the value of the template's PriorityClass (the global
	// default's, or 0): higher priorities are placed first, and preempt
	// lower ones that keep them from fitting unless PreemptNever.
	Priority     int32 `json:"-"`
	PreemptNever bool  `json:"-"`
	// Suspended (AnnotationSuspended): the leader keeps the workload's
	// placement as it is and applies nothing new to it.
	Suspended bool `json:"-"`
	// Runtime is the containerd runtime of its RuntimeClass ("": the
	// node's default).
	Runtime string `json:"-"`

	doc            *document
	specField      string
	claimTemplates map[string]pendingClaim
}

// Set is one desired commit, decoded and validated.
type Set struct {
	Workloads  []Workload
	CronJobs   []CronJobDef
	ConfigMaps []ConfigMap
	Secrets    []Secret
	Services   []Service
	// ServiceAccounts are names pods may run as (no token is mounted).
	ServiceAccounts []ServiceAccount
	// Claims are the PersistentVolumeClaim documents, StorageClasses the
	// classes they may name.
	Claims         []Claim
	StorageClasses []StorageClass
	// PriorityClasses give workloads their Priority.
	PriorityClasses []PriorityClass
	// Budgets are the PodDisruptionBudgets.
	Budgets []Budget
	// RuntimeClasses name containerd runtimes.
	RuntimeClasses []RuntimeClass
	Nodes          []Node
	Skipped        []Skipped
	Warnings       []Problem

	opts      LoadOptions
	claimDocs []pendingClaim
}

// Workload returns the workload named by ref.
func (s *Set) Workload(ref Ref) (*Workload, bool) {
	i := sort.Search(len(s.Workloads), func(i int) bool { return !refLess(s.Workloads[i].Ref, ref) })
	if i < len(s.Workloads) && s.Workloads[i].Ref == ref {
		return &s.Workloads[i], true
	}
	return nil, false
}

func refLess(a, b Ref) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}
