package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/leader"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources"
)

const webYAML = "{apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 2, selector: {matchLabels: {app: web}}, " +
	"template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: busybox}]}}}}\n"

func standalone(t *testing.T, src *fakeSource) (*Agent, *int) {
	t.Helper()
	testenv.Require(t, "git")
	_, url := testenv.NewBareRepo(t)
	cfg := DefaultConfig()
	cfg.Node, cfg.DataDir = "node-a", t.TempDir()
	cfg.StatusInterval.Duration = 0
	a := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{Source: src, Status: openStatus(t, url, "node-a"), Reconciler: &fakeReconciler{}})
	calls := 0
	a.next = func(in leader.Input) leader.Output {
		calls++
		return leader.Next(in)
	}
	return a, &calls
}

// The leader decides once per pass: leader.Next runs once whether the
// pass writes a status commit or not (the write reuses the decision while
// the branch has not moved).
func TestLeaderNextOncePerPass(t *testing.T) {
	src := &fakeSource{head: sources.Revision{Commit: "c1"}, files: map[string][]manifest.File{"c1": {{Path: "web.yaml", Data: []byte(webYAML)}}}}
	a, calls := standalone(t, src)
	ctx := context.Background()
	a.intakeWork(ctx, true)
	for pass := 1; pass <= 5; pass++ {
		a.pass(ctx)
		if *calls != pass {
			t.Fatalf("pass %d: leader.Next ran %d times in all, want %d", pass, *calls, pass)
		}
	}
	if a.committed == nil || len(a.committed.Placements) != 1 || a.committed.Cluster.DesiredCommit != "c1" {
		t.Fatalf("nothing committed: %+v", a.committed)
	}
}

// A desired commit that cannot be loaded holds only its own replicas: the
// node loop is given every other replica as usual, and the held ones with
// the reason.
func TestUnloadableCommitHoldsOnlyItsReplicas(t *testing.T) {
	src := &fakeSource{head: sources.Revision{Commit: "c1"}, files: map[string][]manifest.File{"c1": {{Path: "web.yaml", Data: []byte(webYAML)}}}}
	a, _ := standalone(t, src)
	ctx := context.Background()
	a.intakeWork(ctx, true)
	a.pass(ctx)
	// The branch names, for one more workload, a commit this node does
	// not have and cannot fetch.
	st := a.committed.Clone()
	ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "db"}
	st.Placements[ref] = manifest.Placement{Workload: ref, DesiredCommit: "c9", SpecHash: "h9",
		Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: "node-a", SpecHash: "h9"}}}
	a.committed = st
	src.syncErr = func() error { return errors.New("remote unreachable") }
	// The main loop asks the intake for c9; the intake's fetch fails;
	// the main loop publishes again with the reason.
	a.publishDesired(ctx)
	a.intakeWork(ctx, false)
	a.view, _ = a.intakeOut.Get()
	a.publishDesired(ctx)
	in, ok := a.nodeIn.Get()
	if !ok {
		t.Fatal("nothing published")
	}
	held, normal := 0, 0
	for _, d := range in.desired {
		switch {
		case d.Held != "" && d.Workload == ref && strings.Contains(d.Held, "remote unreachable"):
			held++
		case d.Held == "" && d.Workload.Name == "web":
			normal++
		default:
			t.Fatalf("unexpected replica %+v", d)
		}
	}
	if held != 1 || normal != 2 {
		t.Fatalf("held %d (want 1), reconciled %d (want 2)", held, normal)
	}
	// The intake does not fetch again before the retry time.
	fetches := 0
	src.syncErr = func() error { fetches++; return errors.New("remote unreachable") }
	a.intakeWork(ctx, false)
	if fetches != 0 {
		t.Fatalf("fetched %d times before the retry time", fetches)
	}
}

// A follower holds the cluster's commit in force (the status branch's
// desiredCommit) as its own; when it comes to lead and the branch's head
// is broken, that commit stays in force and it keeps placing from it.
func TestNewLeaderKeepsTheClustersCommit(t *testing.T) {
	broken := "{apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {template: {spec: {containers: [{name: main, imagee: busybox}]}}}}\n"
	src := &fakeSource{head: sources.Revision{Commit: "c2"}, files: map[string][]manifest.File{
		"c1": {{Path: "web.yaml", Data: []byte(webYAML)}},
		"c2": {{Path: "web.yaml", Data: []byte(broken)}},
	}}
	a, _ := standalone(t, src)
	ctx := context.Background()
	// As a follower: the branch says c1 is in force.
	a.leading.Store(false)
	a.wantCommits(map[string]bool{"c1": true}, "c1")
	a.intakeWork(ctx, false)
	if got := a.inForceCommit(); got != "c1" {
		t.Fatalf("follower's commit in force %q, want the cluster's c1", got)
	}
	// Leading now: the head c2 is refused, c1 stays.
	a.leading.Store(true)
	a.intakeWork(ctx, true)
	v, _ := a.intakeOut.Get()
	if v.inForce == nil || v.inForce.rev.Commit != "c1" || v.rejection == nil || v.rejection.Commit != "c2" {
		t.Fatalf("after the broken head: in force %v, rejection %+v", v.inForce, v.rejection)
	}
	a.pass(ctx)
	if p, ok := a.committed.Placements[manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}]; !ok || len(p.Replicas) != 2 {
		t.Fatalf("the new leader does not place from the commit in force: %+v", a.committed.Placements)
	}
}
