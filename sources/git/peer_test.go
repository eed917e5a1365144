package git

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"driftless.dev/driftless/internal/testenv"
)

// A clone served by ServeUploadPack is fetched by go-git's own HTTP
// client, first whole, then the new commits only.
func TestServeUploadPack(t *testing.T) {
	dir, url := testenv.NewBareRepo(t)
	work := testenv.NewWorkClone(t, url)
	work.WriteFile("a.yaml", "a: 1\n")
	work.Commit("one")
	work.Push()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/peer/v1/git/desired")
		if !ok {
			http.NotFound(w, r)
			return
		}
		ServeUploadPack(w, r, dir, rest)
	}))
	defer srv.Close()

	client, err := OpenBare(filepath.Join(t.TempDir(), "c.git"), url)
	if err != nil {
		t.Fatal(err)
	}
	into := plumbing.ReferenceName("refs/driftless/peer/main")
	for i, msg := range []string{"", "two"} {
		if msg != "" {
			work.WriteFile("a.yaml", "a: 2\n")
			work.Commit(msg)
			work.Push()
		}
		want := testenv.Git(t, dir, "rev-parse", "refs/heads/main")
		got, err := FetchFromPeer(context.Background(), client, srv.URL+"/peer/v1/git/desired", nil, "refs/heads/main", into, 10*time.Second)
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		if got.String() != want {
			t.Fatalf("fetch %d: %s, want %s", i, got, want)
		}
		c, err := client.CommitObject(got)
		if err != nil {
			t.Fatalf("fetch %d: commit not stored: %v", i, err)
		}
		if _, err := c.Tree(); err != nil {
			t.Fatalf("fetch %d: tree not stored: %v", i, err)
		}
	}
	// Pushing is not served.
	resp, err := http.Post(srv.URL+"/peer/v1/git/desired/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader(""))
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("receive-pack: %v %v", resp, err)
	}
}

// A follower's clone fetches a desired commit from a peer's clone, which
// serves the commit it holds; it then holds the commit for its own
// peers. A peer that does not hold the commit asked for is an error that
// names it.
func TestRepoFetchFromPeer(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	work := testenv.NewWorkClone(t, url)
	work.WriteFile("a.yaml", "a: 1\n")
	first := work.Commit("one")
	work.Push()
	leaderDir := filepath.Join(t.TempDir(), "leader")
	leader, err := Open(ctx, Config{URL: url, Dir: leaderDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if leader.Held() != first {
		t.Fatalf("leader holds %q, want %s", leader.Held(), first)
	}
	serve := func(dir string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ServeUploadPack(w, r, dir, strings.TrimPrefix(r.URL.Path, "/peer/v1/git/desired"))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/peer/v1/git/desired"
	}
	// The follower never reaches the Git host.
	followerDir := filepath.Join(t.TempDir(), "follower")
	follower, err := Open(ctx, Config{URL: "git://127.0.0.1:1/none.git", Dir: followerDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := follower.FetchFromPeer(ctx, serve(leaderDir), nil, first, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !follower.Has(first) || follower.Held() != first {
		t.Fatalf("after a peer fetch: has %v, holds %q", follower.Has(first), follower.Held())
	}
	// A third node fetches the commit from the follower.
	third, err := Open(ctx, Config{URL: "git://127.0.0.1:1/none.git", Dir: filepath.Join(t.TempDir(), "third")})
	if err != nil {
		t.Fatal(err)
	}
	if err := third.FetchFromPeer(ctx, serve(followerDir), nil, first, 10*time.Second); err != nil || !third.Has(first) {
		t.Fatalf("from the follower: %v", err)
	}
	// A newer commit the follower does not hold yet.
	work.WriteFile("a.yaml", "a: 2\n")
	second := work.Commit("two")
	work.Push()
	err = third.FetchFromPeer(ctx, serve(followerDir), nil, second, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "does not hold desired commit "+second[:7]) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("a peer without the commit: %v", err)
	}
	if third.Held() != first {
		t.Fatalf("a failed fetch moved what is held: %s", third.Held())
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *int
}

func (c countingWriter) Write(b []byte) (int, error) {
	*c.n += len(b)
	return c.ResponseWriter.Write(b)
}

// A fetcher that has the previous commit is sent the new commit's
// objects alone, not the history it already has (the haves of its
// request are read).
func TestServeSendsOnlyWhatIsNew(t *testing.T) {
	dir, url := testenv.NewBareRepo(t)
	work := testenv.NewWorkClone(t, url)
	for i := 0; i < 30; i++ {
		work.WriteFile(fmt.Sprintf("nodes/node-%02d.yaml", i), fmt.Sprintf("name: node-%02d\nround: \"0\"\n%s\n", i, strings.Repeat("# padding\n", 20)))
	}
	work.Commit("thirty")
	for i := 1; i < 40; i++ {
		work.WriteFile(fmt.Sprintf("nodes/node-%02d.yaml", i%30), fmt.Sprintf("name: node-%02d\nround: \"%d\"\n", i%30, i))
		work.Commit(fmt.Sprintf("round %d", i))
	}
	work.Push()
	var sent int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w = countingWriter{w, &sent}
		}
		ServeUploadPack(w, r, dir, strings.TrimPrefix(r.URL.Path, "/peer/v1/git/status"))
	}))
	defer srv.Close()
	client, err := OpenBare(filepath.Join(t.TempDir(), "c.git"), url)
	if err != nil {
		t.Fatal(err)
	}
	into := plumbing.ReferenceName("refs/driftless/peer/main")
	fetch := func() int {
		sent = 0
		if _, err := FetchFromPeer(context.Background(), client, srv.URL+"/peer/v1/git/status", nil, "refs/heads/main", into, time.Minute); err != nil {
			t.Fatal(err)
		}
		return sent
	}
	whole := fetch()
	work.WriteFile("nodes/node-07.yaml", "name: node-07\nround: \"new\"\n")
	want := work.Commit("one more")
	work.Push()
	one := fetch()
	t.Logf("whole history %d bytes, one commit %d bytes", whole, one)
	if one*10 > whole {
		t.Fatalf("one new commit took %d bytes, the whole history %d: the fetcher's haves were not used", one, whole)
	}
	if ref, err := client.Reference(into, true); err != nil || ref.Hash().String() != want {
		t.Fatalf("fetched %v %v, want %s", ref, err, want)
	}
	if _, err := client.CommitObject(plumbing.NewHash(want)); err != nil {
		t.Fatal(err)
	}
}
