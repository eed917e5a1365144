package manifest

import "fmt"

// Ref names one workload of the desired state.
type Ref struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

// String renders a ref as "namespace/Kind/name".
func (r Ref) String() string { return fmt.Sprintf("%s/%s/%s", r.Namespace, r.Kind, r.Name) }

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
}

// ReplicaPlacement binds one replica (by index) to a node.
type ReplicaPlacement struct {
	Index int `json:"index"`
	// Node is the node the replica runs on; empty while it is pending.
	Node string `json:"node,omitempty"`
	// SpecHash is the template hash this replica runs (it differs from the
	// workload's during a rollout).
	SpecHash string `json:"specHash"`
	// Pending lists why no node fits, when Node is empty.
	Pending []string `json:"pending,omitempty"`
	// Status is the last observed state reported by the node.
	Status *ReplicaStatus `json:"status,omitempty"`
}

// ReplicaStatus is what a node observed of one replica.
type ReplicaStatus struct {
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts,omitempty"`
	// Reason is a short CamelCase word (ErrImagePull, CrashLoopBackOff, ...).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}
