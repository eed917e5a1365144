package reconcile_test

import (
	"fmt"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
)

// Diff compares the desired replicas with the containers that exist and
// says what to do; it does no I/O. Here one replica's container runs with
// an old spec (replaced), another has none yet (created), and a container
// of a workload no longer placed here goes.
func ExampleDiff() {
	ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	spec := manifest.PodSpec{RestartPolicy: "Always", Containers: []manifest.Container{{Name: "main", Image: "busybox"}}}
	desired := []reconcile.DesiredReplica{
		{Workload: ref, Index: 0, SpecHash: "v2", Pod: spec},
		{Workload: ref, Index: 1, SpecHash: "v2", Pod: spec},
	}
	labels := func(name string, idx string) map[string]string {
		return map[string]string{reconcile.LabelNamespace: "default", reconcile.LabelKind: "Deployment", reconcile.LabelWorkload: name, reconcile.LabelReplica: idx}
	}
	old := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "old"}
	actual := []reconcile.Container{
		{ID: reconcile.ContainerID(ref, 0, "main", "v1"), Labels: labels("web", "0"), State: reconcile.StateRunning},
		{ID: reconcile.ContainerID(old, 0, "main", "x"), Labels: labels("old", "0"), State: reconcile.StateRunning},
	}
	plan := reconcile.Diff(desired, actual, reconcile.BackoffState{}, time.Now())
	for _, op := range plan.Remove {
		fmt.Println("remove", op.ID[:len(op.ID)-7])
	}
	for _, op := range plan.Create {
		fmt.Println("create", op.Replica.Workload.Name, op.Replica.Index, op.Containers)
	}
	// Output:
	// remove old-0-main
	// remove web-0-main
	// create web 0 [main]
	// create web 1 [main]
}
