package status

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
)

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: url, Dir: filepath.Join(t.TempDir(), "status"), AuthorName: "driftless node-a"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setLeader(node string, term int64, desired string) Mutate {
	return func(cur *State) (*State, *Message, error) {
		cur.Cluster.Leader, cur.Cluster.Term, cur.Cluster.DesiredCommit = node, term, desired
		return cur, &Message{Summary: "lead", Leader: node, Term: term, DesiredCommit: desired}, nil
	}
}

func TestUpdateCommitsOnlyChanges(t *testing.T) {
	ctx := context.Background()
	dir, url := testenv.NewBareRepo(t)
	s := open(t, url)
	desired := strings.Repeat("a", 40)
	st, changed, err := s.Update(ctx, setLeader("node-a", 1, desired))
	if err != nil || !changed || st.Head == "" {
		t.Fatalf("first update: %v %v %+v", changed, err, st)
	}
	start := time.Now()
	if _, changed, err := s.Update(ctx, setLeader("node-a", 1, desired)); err != nil || changed {
		t.Fatalf("unchanged update made a commit: %v %v", changed, err)
	}
	t.Logf("no-change update: %s", time.Since(start))
	ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	_, changed, err = s.Update(ctx, func(cur *State) (*State, *Message, error) {
		cur.Placements[ref] = manifest.Placement{Workload: ref, DesiredCommit: desired, SpecHash: "abc",
			Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: "node-a", SpecHash: "abc", Status: &manifest.ReplicaStatus{Phase: "Running", Ready: true}}}}
		return cur, &Message{Summary: "schedule web", Leader: "node-a", Term: 1, DesiredCommit: desired}, nil
	})
	if err != nil || !changed {
		t.Fatalf("placement update: %v %v", changed, err)
	}
	// The branch as git sees it: two commits, trailers, readable files.
	log := testenv.Git(t, dir, "log", "--format=%s|%(trailers:key=Desired-Commit,valueonly,separator=)|%(trailers:key=Leader,valueonly,separator=)|%(trailers:key=Term,valueonly,separator=)", "driftless/status")
	want := fmt.Sprintf("schedule web|%s|node-a|1\nlead|%s|node-a|1", desired, desired)
	if log != want {
		t.Fatalf("log:\n%s\nwant:\n%s", log, want)
	}
	files := testenv.Git(t, dir, "ls-tree", "-r", "--name-only", "driftless/status")
	if files != "cluster.yaml\nplacements/default/Deployment.web.yaml" {
		t.Fatalf("files: %q", files)
	}
	p := testenv.Git(t, dir, "show", "driftless/status:placements/default/Deployment.web.yaml")
	if !strings.Contains(p, "phase: Running") || !strings.Contains(p, "schemaVersion: 1") {
		t.Fatalf("placement file:\n%s", p)
	}
	// A fresh reader sees the same state.
	got, err := ReadState(ctx, url, "driftless/status", s.cfg.Auth)
	if err != nil || got.Placements[ref].Replicas[0].Status.Phase != "Running" || got.Cluster.Leader != "node-a" {
		t.Fatalf("ReadState: %+v %v", got, err)
	}
}

// Concurrent writers on one branch: compare-and-swap retries apply every
// update exactly once.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	const writers, each = 4, 3
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		s := open(t, url)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, _, err := s.Update(ctx, func(cur *State) (*State, *Message, error) {
					name := fmt.Sprintf("n%d-%d", w, i)
					cur.Nodes[name] = NodeStatus{Name: name, State: "alive"}
					cur.Cluster.Term++
					return cur, &Message{Summary: "add " + name, Leader: name, Term: cur.Cluster.Term}, nil
				})
				if err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, err := open(t, url).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != writers*each || st.Cluster.Term != writers*each {
		t.Fatalf("nodes=%d term=%d, want %d each", len(st.Nodes), st.Cluster.Term, writers*each)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	w := testenv.NewWorkClone(t, url)
	testenv.Git(t, w.Dir, "checkout", "-q", "--orphan", "driftless/status")
	w.WriteFile("cluster.yaml", "schemaVersion: 99\nleader: future\nterm: 3\n")
	w.Commit("from the future")
	testenv.Git(t, w.Dir, "push", "-q", "origin", "driftless/status")
	s := open(t, url)
	if _, err := s.Read(ctx); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("read newer schema: %v", err)
	}
	if _, _, err := s.Update(ctx, setLeader("a", 4, "")); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("update on newer schema: %v", err)
	}
}
