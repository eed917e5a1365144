package services

import (
	"testing"

	"driftless.dev/driftless/manifest"
)

// A StatefulSet's endpoints carry each pod's hostname (its ordinal name)
// and the governing Service as subdomain: the per-pod DNS names.
func TestStatefulSetEndpointsHaveOrdinalHostnames(t *testing.T) {
	set, err := manifest.Load([]manifest.File{{Path: "db.yaml", Data: []byte(`apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: c, image: busybox, ports: [{containerPort: 5432}]}]
`)}})
	if err != nil {
		t.Fatal(err)
	}
	w := set.Workloads[0]
	run := &manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true}
	pl := map[manifest.Ref]manifest.Placement{w.Ref: {Workload: w.Ref, Replicas: []manifest.ReplicaPlacement{
		{Index: 0, Node: "n1", Status: withIP(run, "10.244.0.5")}, {Index: 1, Node: "n2", Status: withIP(run, "10.244.1.5")}}}}
	recs := Compute(Input{Services: set.Services, Workloads: set.Workloads, Placements: pl})
	r := recs[manifest.Ref{Namespace: "default", Kind: "Service", Name: "db"}]
	if len(r.Endpoints) != 2 {
		t.Fatalf("endpoints %+v", r.Endpoints)
	}
	for i, e := range r.Endpoints {
		if want := manifest.PodName(w.Ref, i); e.Hostname != want || e.Subdomain != "db" {
			t.Fatalf("endpoint %d: hostname %q subdomain %q, want %s.db", i, e.Hostname, e.Subdomain, want)
		}
	}
}

func withIP(s *manifest.ReplicaStatus, ip string) *manifest.ReplicaStatus {
	c := *s
	c.PodIP = ip
	return &c
}
