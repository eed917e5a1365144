package rollout

import (
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
)

// Node is a scheduler node, for the tables below.
type Node = scheduler.Node

// schedIn is what one leader pass gives the rollout controllers and the
// scheduler.
type schedIn struct {
	DesiredCommit string
	Workloads     []manifest.Workload
	Nodes         []Node
	Current       map[manifest.Ref]manifest.Placement
	Now           time.Time
	Lingering     map[manifest.Ref]int
}

type schedOut struct {
	Placements map[manifest.Ref]manifest.Placement
	Wake       time.Time
}

// Schedule runs the rollout controllers and the scheduler in the order
// the leader does (jobs.Decide).
func Schedule(in schedIn) schedOut {
	steps := Plan(in.Workloads, in.Current, in.Lingering, in.Now)
	out := scheduler.Schedule(scheduler.Input{DesiredCommit: in.DesiredCommit, Workloads: in.Workloads, Nodes: in.Nodes,
		Current: in.Current, Now: in.Now, Requests: Requests(steps, nil)})
	wake := Finish(in.Workloads, steps, in.Current, out.Placements, in.Now)
	return schedOut{Placements: out.Placements, Wake: wake}
}

func wl(name string, replicas int, mod ...func(*manifest.Workload)) manifest.Workload {
	w := manifest.Workload{
		Ref:      manifest.Ref{Namespace: "default", Kind: "Deployment", Name: name},
		Replicas: replicas,
		SpecHash: "h-" + name,
		Template: manifest.PodTemplateSpec{Spec: manifest.PodSpec{Containers: []manifest.Container{{Name: "main", Image: "busybox"}}}},
	}
	for _, m := range mod {
		m(&w)
	}
	return w
}

func node(name string) Node {
	return Node{Name: name, Alive: true, Labels: map[string]string{"kubernetes.io/hostname": name}}
}
