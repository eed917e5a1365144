package scheduler

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

// With room for one replica, the workload of the higher priority gets it
// whatever the order of the workloads.
func TestHigherPriorityPlacedFirst(t *testing.T) {
	w := func(name string, prio int32) manifest.Workload {
		return manifest.Workload{
			Ref: manifest.Ref{Namespace: "default", Kind: "Deployment", Name: name}, Replicas: 1, SpecHash: name, Priority: prio,
			Template: manifest.PodTemplateSpec{Spec: manifest.PodSpec{Containers: []manifest.Container{{Name: "c",
				Resources: manifest.ResourceRequirements{Requests: manifest.ResourceList{"cpu": resource.MustParse("600m")}}}}}},
		}
	}
	nodes := []Node{{Name: "n1", Alive: true, Allocatable: map[string]resource.Quantity{"cpu": resource.MustParse("1")}}}
	for _, ws := range [][]manifest.Workload{{w("a-low", 1), w("b-high", 100)}, {w("b-high", 100), w("a-low", 1)}} {
		out := Schedule(Input{Workloads: ws, Nodes: nodes})
		if n := out.Placements[ws[0].Ref].Replicas[0].Node + "/" + out.Placements[ws[1].Ref].Replicas[0].Node; (ws[0].Name == "b-high" && n != "n1/") || (ws[0].Name == "a-low" && n != "/n1") {
			t.Fatalf("order %s,%s: placed %s", ws[0].Name, ws[1].Name, n)
		}
	}
}
