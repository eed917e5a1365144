package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/sources"
	"driftless.dev/driftless/sources/git"
)

func openMirrors(t *testing.T, urls ...string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: urls[0], Mirrors: urls[1:], Dir: filepath.Join(t.TempDir(), "status"), AuthorName: "driftless node-a"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func headOf(t *testing.T, dir string) string {
	t.Helper()
	return testenv.Git(t, dir, "rev-parse", "refs/heads/driftless/status")
}

// Two status mirrors: writes reach both; with the first down they go to
// the second, and the first catches up by fast-forward when it returns
// (the longer history wins); two mirrors that have forked are reported,
// the store keeps following the history it has, and neither is forced.
func TestStatusMirrors(t *testing.T) {
	ctx := context.Background()
	dirA, urlA := testenv.NewBareRepo(t)
	dirB, urlB := testenv.NewBareRepo(t)
	s := openMirrors(t, urlA, urlB)
	if _, _, err := s.Update(ctx, setLeader("node-a", 1, strings.Repeat("a", 40))); err != nil {
		t.Fatal(err)
	}
	if a, b := headOf(t, dirA), headOf(t, dirB); a != b {
		t.Fatalf("mirrors differ after a write: %s %s", a, b)
	}

	// The first mirror goes away: the next write lands on the second.
	aside := dirA + ".away"
	if err := os.Rename(dirA, aside); err != nil {
		t.Fatal(err)
	}
	st, _, err := s.Update(ctx, setLeader("node-a", 2, strings.Repeat("b", 40)))
	if err != nil {
		t.Fatalf("write with the first mirror down: %v", err)
	}
	if headOf(t, dirB) != st.Head {
		t.Fatal("the second mirror did not get the write")
	}
	if err := os.Rename(aside, dirA); err != nil {
		t.Fatal(err)
	}
	// A reader that only knows the first mirror's (older) history takes
	// the second's, which contains it.
	r := openMirrors(t, urlA, urlB)
	got, err := r.Read(ctx)
	if err != nil || got.Head != st.Head || r.Forked() != "" {
		t.Fatalf("read after the outage: head %s (want %s), forked %q, %v", got.Head, st.Head, r.Forked(), err)
	}
	// The next write brings the first mirror up by fast-forward.
	st, _, err = s.Update(ctx, setLeader("node-a", 3, strings.Repeat("c", 40)))
	if err != nil || headOf(t, dirA) != st.Head || headOf(t, dirB) != st.Head {
		t.Fatalf("catch-up write: %v; heads %s %s, want %s", err, headOf(t, dirA), headOf(t, dirB), st.Head)
	}

	// A fork: another writer that knows only the second mirror commits
	// there, and one that knows only the first commits there.
	if _, _, err := open(t, urlB).Update(ctx, setLeader("node-b", 4, strings.Repeat("d", 40))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := open(t, urlA).Update(ctx, setLeader("node-c", 4, strings.Repeat("e", 40))); err != nil {
		t.Fatal(err)
	}
	forkA, forkB := headOf(t, dirA), headOf(t, dirB)
	got, err = s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Forked(); !strings.Contains(f, "forked") || !strings.Contains(f, forkA[:7]) || !strings.Contains(f, forkB[:7]) {
		t.Fatalf("fork not reported: %q", f)
	}
	if got.Head != forkA {
		t.Fatalf("following %s, want the first mirror's %s", got.Head, forkA)
	}
	st, _, err = s.Update(ctx, setLeader("node-a", 5, strings.Repeat("f", 40)))
	if err != nil {
		t.Fatalf("write during a fork: %v", err)
	}
	if headOf(t, dirA) != st.Head || headOf(t, dirB) != forkB {
		t.Fatalf("after a write during the fork: A %s (want %s), B %s (want it untouched, %s)", headOf(t, dirA), st.Head, headOf(t, dirB), forkB)
	}
	if !strings.Contains(s.Forked(), "forked") {
		t.Fatalf("fork forgotten: %q", s.Forked())
	}
}

// A follower reads the status branch from a peer's clone: a history that
// contains its own is taken; a peer serving a fork is refused and the
// local copy kept.
func TestReadFromPeer(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	leaderDir := filepath.Join(t.TempDir(), "leader")
	leader, err := Open(ctx, Config{URL: url, Dir: leaderDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.Update(ctx, setLeader("node-a", 1, strings.Repeat("a", 40))); err != nil {
		t.Fatal(err)
	}
	follower := open(t, url)
	if _, err := follower.Read(ctx); err != nil {
		t.Fatal(err)
	}
	serve := func(dir string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			git.ServeUploadPack(w, r, dir, strings.TrimPrefix(r.URL.Path, "/peer/v1/git/status"))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/peer/v1/git/status"
	}
	next, _, err := leader.Update(ctx, setLeader("node-a", 2, strings.Repeat("b", 40)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := follower.ReadFromPeer(ctx, serve(leaderDir), nil, 10*time.Second)
	if err != nil || st.Head != next.Head || st.Cluster.Term != 2 {
		t.Fatalf("from the leader's peer: %+v %v, want head %s", st, err, next.Head)
	}

	// A peer whose branch started anew (a fork of ours): refused.
	_, otherURL := testenv.NewBareRepo(t)
	forkDir := filepath.Join(t.TempDir(), "fork")
	fork, err := Open(ctx, Config{URL: otherURL, Dir: forkDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fork.Update(ctx, setLeader("node-x", 9, strings.Repeat("c", 40))); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.ReadFromPeer(ctx, serve(forkDir), nil, 10*time.Second); err == nil || !strings.Contains(err.Error(), "does not contain") {
		t.Fatalf("a forked peer: %v", err)
	}
	if st, err := follower.local(); err != nil || st.Head != next.Head {
		t.Fatalf("after a refused peer the local copy moved: %+v %v", st, err)
	}
}

// A mirror that hangs gets its share of the deadline only: the read
// still ends with the next mirror's history.
func TestStatusMirrorHangs(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	testenv.InitBareRepo(t, filepath.Join(base, "a.git"))
	d := testenv.GitDaemon(t, base)
	_, urlB := testenv.NewBareRepo(t)
	s := openMirrors(t, d.URL+"/a.git", urlB)
	st, _, err := s.Update(ctx, setLeader("node-a", 1, strings.Repeat("a", 40)))
	if err != nil {
		t.Fatal(err)
	}
	d.Hang(t)
	r := openMirrors(t, d.URL+"/a.git", urlB)
	rctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	got, err := r.Read(rctx)
	if err != nil || got.Head != st.Head {
		t.Fatalf("read with the first mirror hanging: %+v %v, want head %s", got, err, st.Head)
	}
}

// A status host that answers 429 with a Retry-After: reads and writes
// fail with the wait it asks for, and the local copy stays.
func TestStatusHostRetryAfter(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "45")
		http.Error(w, "rate limited", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	s, err := Open(ctx, Config{URL: srv.URL + "/fleet.git", Dir: filepath.Join(t.TempDir(), "status")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Read(ctx)
	if d, ok := sources.RetryAfter(err); !ok || d != 45*time.Second {
		t.Fatalf("read: wait %s %v: %v", d, ok, err)
	}
	_, _, err = s.Update(ctx, setLeader("node-a", 1, strings.Repeat("a", 40)))
	if d, ok := sources.RetryAfter(err); !ok || d != 45*time.Second {
		t.Fatalf("write: wait %s %v: %v", d, ok, err)
	}
}
