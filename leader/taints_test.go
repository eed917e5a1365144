package leader

import (
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

// The leader stamps a Node policy's NoExecute taint with the time it first
// saw it, keeps that time on the node's file (a new leader counts from
// it), wakes when a toleration runs out, and moves the replica then.
func TestTolerationSecondsCountFromTheRecordedTaint(t *testing.T) {
	policy := "{apiVersion: driftless.dev/v1, kind: Node, metadata: {name: node-a}, spec: {taints: [{key: maintenance, effect: NoExecute}]}}\n"
	app := "{apiVersion: apps/v1, kind: Deployment, metadata: {name: app}, spec: {replicas: 1, selector: {matchLabels: {app: app}}, " +
		"template: {metadata: {labels: {app: app}}, spec: {" +
		"tolerations: [{key: maintenance, operator: Exists, effect: NoExecute, tolerationSeconds: 30}], containers: [{name: main, image: busybox}]}}}}\n"
	// Only node-a at first, so the replica goes there.
	in := input(load(t, app), nil, members("node-a"))
	first := Next(in)
	if p := first.Next.Placements[manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "app"}]; p.Replicas[0].Node != "node-a" {
		t.Fatalf("placed on %q", p.Replicas[0].Node)
	}

	// The taint arrives with a commit; the replica may stay 30 s.
	tainted := load(t, policy, app)
	in = input(tainted, first.Next, members("node-a", "node-b"))
	in.Reports = running(first.Next)
	in.Now, in.JobNow = t0.Add(10*time.Second), t0.Add(10*time.Second)
	second := Next(in)
	rec := second.Next.Nodes["node-a"].Taints
	if len(rec) != 1 || rec[0].TimeAdded == nil || !rec[0].TimeAdded.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("recorded taints %+v, want maintenance since t0+10s", rec)
	}
	ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "app"}
	if n := second.Next.Placements[ref].Replicas[0].Node; n != "node-a" {
		t.Fatalf("moved to %q within its toleration", n)
	}
	if want := t0.Add(40 * time.Second); !second.JobWake.Equal(want) {
		t.Fatalf("JobWake %v, want %v", second.JobWake, want)
	}

	// Another leader, later: the recorded time holds, not its own clock.
	in = input(tainted, second.Next, members("node-a", "node-b"))
	in.Node = "node-b"
	in.Reports = running(second.Next)
	in.Now, in.JobNow = t0.Add(39*time.Second), t0.Add(39*time.Second)
	third := Next(in)
	if n := third.Next.Placements[ref].Replicas[0].Node; n != "node-a" {
		t.Fatalf("moved at 39s to %q", n)
	}
	in.Current = third.Next
	in.Now, in.JobNow = t0.Add(40*time.Second), t0.Add(40*time.Second)
	fourth := Next(in)
	if n := fourth.Next.Placements[ref].Replicas[0].Node; n != "node-b" {
		t.Fatalf("at 40s on %q, want node-b", n)
	}

	// The taint goes: its record goes with it.
	in = input(load(t, app), fourth.Next, members("node-a", "node-b"))
	if rec := Next(in).Next.Nodes["node-a"].Taints; rec != nil {
		t.Fatalf("taint record kept: %+v", rec)
	}
}
