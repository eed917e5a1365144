package scheduler

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

func TestAllocated(t *testing.T) {
	w := manifest.Workload{Ref: manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}, Replicas: 3}
	w.Template.Spec.Containers = []manifest.Container{
		{Name: "a", Resources: manifest.ResourceRequirements{Requests: manifest.ResourceList{"cpu": resource.MustParse("250m"), "memory": resource.MustParse("64Mi")}}},
		// A limit without a request counts as the request.
		{Name: "b", Resources: manifest.ResourceRequirements{Limits: manifest.ResourceList{"cpu": resource.MustParse("100m")}}},
	}
	free := manifest.Workload{Ref: manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "free"}, Replicas: 1}
	free.Template.Spec.Containers = []manifest.Container{{Name: "c"}}
	placements := map[manifest.Ref]manifest.Placement{
		w.Ref:    {Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: "n1"}, {Index: 1, Node: "n1"}, {Index: 2, Node: "n2"}, {Index: 3}}},
		free.Ref: {Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: "n3"}}},
	}
	got := Allocated([]manifest.Workload{w, free}, placements)
	if got["n1"]["cpu"] != 700 || got["n1"]["memory"] != 2*64<<20*1000 || got["n2"]["cpu"] != 350 {
		t.Fatalf("allocated: %v", got)
	}
	if _, ok := got["n3"]; ok {
		t.Fatalf("a node with request-less replicas has an allocation: %v", got)
	}
}
