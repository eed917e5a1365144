package scheduler_test

import (
	"fmt"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
)

// Schedule places replicas on feasible nodes, spreading them (least
// allocated first); a replica no node fits says why.
func ExampleSchedule() {
	web := manifest.Workload{
		Ref:      manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"},
		Replicas: 3,
		SpecHash: "h1",
		Template: manifest.PodTemplateSpec{Spec: manifest.PodSpec{
			NodeSelector: map[string]string{"disk": "ssd"},
			Containers:   []manifest.Container{{Name: "main", Image: "busybox", Ports: []manifest.ContainerPort{{ContainerPort: 80, HostPort: 8080}}}},
		}},
	}
	nodes := []scheduler.Node{
		{Name: "a", Alive: true, Labels: map[string]string{"disk": "ssd"}},
		{Name: "b", Alive: true, Labels: map[string]string{"disk": "ssd"}},
		{Name: "c", Alive: true, Labels: map[string]string{"disk": "hdd"}},
	}
	out := scheduler.Schedule(scheduler.Input{DesiredCommit: "c1", Workloads: []manifest.Workload{web}, Nodes: nodes})
	for _, r := range out.Placements[web.Ref].Replicas {
		fmt.Printf("%d %q %v\n", r.Index, r.Node, r.Pending)
	}
	// Output:
	// 0 "a" []
	// 1 "b" []
	// 2 "" [1 node(s): didn't match nodeSelector 2 node(s): host port in use]
}
