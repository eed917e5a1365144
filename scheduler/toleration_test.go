package scheduler

import (
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

const tolerationDocs = `apiVersion: apps/v1
kind: Deployment
metadata: {name: patient}
spec:
  replicas: 1
  selector: {matchLabels: {app: patient}}
  template:
    metadata: {labels: {app: patient}}
    spec:
      tolerations:
      - {key: maintenance, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
      - {key: maintenance, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
      containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: forever}
spec:
  replicas: 1
  selector: {matchLabels: {app: forever}}
  template:
    metadata: {labels: {app: forever}}
    spec:
      tolerations: [{key: maintenance, operator: Exists, effect: NoExecute}]
      containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain}
spec:
  replicas: 1
  selector: {matchLabels: {app: plain}}
  template:
    metadata: {labels: {app: plain}}
    spec:
      containers: [{name: c, image: busybox}]
`

// A NoExecute taint evicts at once the replicas that do not tolerate it,
// after the smallest tolerationSeconds those that tolerate it for a time,
// and never those that tolerate it without a limit.
func TestTolerationSecondsOfNoExecute(t *testing.T) {
	set := loadSet(t, tolerationDocs)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nodes := oneCPUNodes("a", "b")
	nodes[0].Taints = []manifest.Taint{{Key: "maintenance", Effect: "NoExecute", TimeAdded: &t0}}
	cur := map[manifest.Ref]manifest.Placement{}
	for _, w := range set.Workloads {
		cur[w.Ref] = manifest.Placement{Replicas: []manifest.ReplicaPlacement{ready("a")}}
	}
	nodeOf := func(out Output, name string) string {
		for ref, p := range out.Placements {
			if ref.Name == name {
				return p.Replicas[0].Node
			}
		}
		return ""
	}
	at := func(d time.Duration) Output {
		return Schedule(Input{Workloads: set.Workloads, Nodes: nodes, Current: cur, Now: t0.Add(d)})
	}
	out := at(59 * time.Second)
	if got := []string{nodeOf(out, "patient"), nodeOf(out, "forever"), nodeOf(out, "plain")}; got[0] != "a" || got[1] != "a" || got[2] != "b" {
		t.Fatalf("at 59s: patient, forever, plain on %v; want a, a, b", got)
	}
	if w := TaintWake(set.Workloads, out.Placements, nodes, t0.Add(59*time.Second)); !w.Equal(t0.Add(60 * time.Second)) {
		t.Fatalf("wake %v, want %v", w, t0.Add(60*time.Second))
	}
	out = at(60 * time.Second)
	if got := []string{nodeOf(out, "patient"), nodeOf(out, "forever")}; got[0] != "b" || got[1] != "a" {
		t.Fatalf("at 60s: patient, forever on %v; want b, a", got)
	}
	if w := TaintWake(set.Workloads, out.Placements, nodes, t0.Add(60*time.Second)); !w.IsZero() {
		t.Fatalf("wake %v after the last expiry", w)
	}
}
