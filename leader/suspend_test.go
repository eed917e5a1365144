package leader

import (
	"strings"
	"testing"

	"driftless.dev/driftless/manifest"
)

// A suspended workload keeps its placement exactly while its manifest
// changes; resumed, the change rolls out.
func TestSuspendedWorkloadFrozen(t *testing.T) {
	ms := members("node-a", "node-b")
	ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	v1 := deployment("web", 2)
	out := Next(input(load(t, v1), nil, ms))
	before := out.Next.Placements[ref]

	suspended := strings.Replace(deployment("web", 3), "metadata: {name: web}", `metadata: {name: web, annotations: {driftless.dev/suspended: "true"}}`, 1)
	suspended = strings.Replace(suspended, "image: busybox", "image: busybox:2", 1)
	in := input(load(t, suspended), out.Next, ms)
	in.DesiredCommit = "c2"
	in.Reports = running(out.Next)
	out2 := Next(in)
	p := out2.Next.Placements[ref]
	if !p.Suspended || p.DesiredCommit != before.DesiredCommit || p.SpecHash != before.SpecHash || len(p.Replicas) != 2 || !manifestSameNodes(before, p) {
		t.Fatalf("suspended placement changed:\nbefore %+v\nafter  %+v", before, p)
	}
	if !strings.Contains(out2.Message.Body, "suspended default/web") {
		t.Fatalf("the commit message does not say so:\n%s", out2.Message.Body)
	}
	if strings.Contains(out2.Message.Body+out2.Message.Summary, "schedule default/web") || strings.Contains(out2.Message.Body, "rollout") {
		t.Fatalf("the commit message names the suspended workload:\n%s\n%s", out2.Message.Summary, out2.Message.Body)
	}

	resumed := strings.Replace(deployment("web", 3), "image: busybox", "image: busybox:2", 1)
	in = input(load(t, resumed), out2.Next, ms)
	in.DesiredCommit = "c3"
	in.Reports = running(out2.Next)
	p3 := Next(in).Next.Placements[ref]
	if p3.Suspended || p3.SpecHash == before.SpecHash {
		t.Fatalf("resumed placement: %+v", p3)
	}
}

func manifestSameNodes(a, b manifest.Placement) bool {
	if len(a.Replicas) != len(b.Replicas) {
		return false
	}
	for i := range a.Replicas {
		if a.Replicas[i].Node != b.Replicas[i].Node || a.Replicas[i].Index != b.Replicas[i].Index {
			return false
		}
	}
	return true
}
