package git

import (
	"context"
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
