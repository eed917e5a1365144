package scheduler

import (
	"strings"
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

// A claim larger than what a node's volumes directory still holds keeps
// its replica off that node; one that fits nowhere waits with the reason.
func TestClaimSizeAgainstVolumeSpace(t *testing.T) {
	doc := `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: big}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 60Gi}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      volumes: [{name: d, persistentVolumeClaim: {claimName: big}}]
      containers: [{name: c, image: busybox}]
`
	set := loadSet(t, doc)
	nodes := func(a, b string) []Node {
		return []Node{
			{Name: "a", Alive: true, Allocatable: map[string]resource.Quantity{ResourceVolumes: resource.MustParse(a)}},
			{Name: "b", Alive: true, Allocatable: map[string]resource.Quantity{ResourceVolumes: resource.MustParse(b)}},
		}
	}
	ref := set.Workloads[0].Ref
	out := Schedule(Input{Workloads: set.Workloads, Nodes: nodes("100Gi", "100Gi"), VolumesUsed: map[string]int64{"a": 50 << 30}})
	if r := out.Placements[ref].Replicas[0]; r.Node != "b" || out.Claims.Bound["default/big"] != "b" {
		t.Fatalf("placed %+v, bound %v", r, out.Claims.Bound)
	}
	out = Schedule(Input{Workloads: set.Workloads, Nodes: nodes("50Gi", "50Gi")})
	if r := out.Placements[ref].Replicas[0]; r.Node != "" || !strings.Contains(strings.Join(r.Pending, " "), "2 node(s): "+ReasonVolumeSpace) {
		t.Fatalf("placed %+v", r)
	}
}

// spec.nodeName binds replicas to that node only, whatever the taints;
// a node that is gone or dead leaves them Pending with the reason.
func TestNodeNameBindsWithoutFilters(t *testing.T) {
	w := wl("pinned", 2, func(w *manifest.Workload) { w.Template.Spec.NodeName = "b" })
	nodes := []Node{node("a"), node("b", taint("dedicated", "x", "NoSchedule"))}
	out := Schedule(Input{Workloads: []manifest.Workload{w}, Nodes: nodes})
	for _, r := range out.Placements[w.Ref].Replicas {
		if r.Node != "b" {
			t.Fatalf("replica %+v, want on b", r)
		}
	}
	nodes[1].Alive = false
	out = Schedule(Input{Workloads: []manifest.Workload{w}, Nodes: nodes, Current: out.Placements})
	for _, r := range out.Placements[w.Ref].Replicas {
		if r.Node != "" || !strings.Contains(strings.Join(r.Pending, " "), "spec.nodeName b: not alive") {
			t.Fatalf("replica %+v, want pending on the dead node", r)
		}
	}
}
