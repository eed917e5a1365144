package leader

import (
	"strings"
	"testing"
)

const lowDoc = `{apiVersion: apps/v1, kind: Deployment, metadata: {name: batch}, spec: {replicas: 1, selector: {matchLabels: {app: batch}},
  template: {metadata: {labels: {app: batch}}, spec: {containers: [{name: main, image: busybox, resources: {requests: {cpu: 3}}}]}}}}
`

const highDoc = `{apiVersion: scheduling.k8s.io/v1, kind: PriorityClass, metadata: {name: serving}, value: 100000}
---
{apiVersion: apps/v1, kind: Deployment, metadata: {name: api}, spec: {replicas: 1, selector: {matchLabels: {app: api}},
  template: {metadata: {labels: {app: api}}, spec: {priorityClassName: serving, containers: [{name: main, image: busybox, resources: {requests: {cpu: 2}}}]}}}}
`

// A replica of a higher priority that fits nowhere takes the place of a
// lower one; the status commit names the victim and why.
func TestNextPreemptionInCommit(t *testing.T) {
	ms := members("node-a")
	out := Next(input(load(t, lowDoc), nil, ms))
	in := input(load(t, lowDoc, highDoc), out.Next, ms)
	in.Reports = running(out.Next)
	out2 := Next(in)
	body := out2.Message.Body
	if !strings.Contains(body, "preempt default/batch[0] on node-a: preempted by default/api[0] (priority 100000 > 0) on node-a") {
		t.Fatalf("commit message:\n%s\n%s", out2.Message.Summary, body)
	}
	for ref, p := range out2.Next.Placements {
		if ref.Name == "api" && p.Replicas[0].Node != "node-a" {
			t.Fatalf("api: %+v", p.Replicas)
		}
		if ref.Name == "batch" && p.Replicas[0].Node != "" {
			t.Fatalf("batch: %+v", p.Replicas)
		}
	}
}

// A drained node keeps a replica its budget protects, and the commit says
// which budget.
func TestNextDrainBlockedByBudgetInCommit(t *testing.T) {
	pdb := "{apiVersion: policy/v1, kind: PodDisruptionBudget, metadata: {name: web}, spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}}\n"
	drain := "{apiVersion: driftless.dev/v1, kind: Node, metadata: {name: node-a, annotations: {driftless.dev/drain: \"true\"}}, spec: {}}\n"
	ms := members("node-a")
	out := Next(input(load(t, deployment("web", 1), pdb), nil, ms))
	in := input(load(t, deployment("web", 1), pdb, drain), out.Next, ms)
	in.Reports = running(out.Next)
	out2 := Next(in)
	if !strings.Contains(out2.Message.Body+out2.Message.Summary, "default/web[0] stays on node-a: eviction blocked by PodDisruptionBudget default/web (no disruption allowed)") {
		t.Fatalf("commit message:\n%s\n%s", out2.Message.Summary, out2.Message.Body)
	}
}

// Nodes carry the labels every Kubernetes node has, which real manifests
// select on (kubernetes.io/os: linux, kubernetes.io/arch).
func TestWellKnownNodeLabels(t *testing.T) {
	doc := `{apiVersion: apps/v1, kind: Deployment, metadata: {name: dns}, spec: {replicas: 1, selector: {matchLabels: {app: dns}},
  template: {metadata: {labels: {app: dns}}, spec: {nodeSelector: {kubernetes.io/os: linux, beta.kubernetes.io/arch: arm64}, containers: [{name: main, image: busybox}]}}}}
`
	ms := members("node-a", "node-b")
	ms[1].Arch = "arm64"
	ms[0].Arch = "amd64"
	out := Next(input(load(t, doc), nil, ms))
	for ref, p := range out.Next.Placements {
		if ref.Name == "dns" && (len(p.Replicas) != 1 || p.Replicas[0].Node != "node-b") {
			t.Fatalf("dns: %+v", p.Replicas)
		}
	}
	if l := out.Next.Nodes["node-a"].Labels; l["kubernetes.io/os"] != "linux" || l["kubernetes.io/arch"] != "amd64" {
		t.Fatalf("labels of node-a: %v", l)
	}
}
