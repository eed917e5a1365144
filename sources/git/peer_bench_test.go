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

// BenchmarkServeOneCommit serves, over the peer protocol, the one commit
// a follower lacks of a branch like a status branch (fifty node files
// and a history of 300 commits, each changing one file).
func BenchmarkServeOneCommit(b *testing.B) {
	dir, url := testenv.NewBareRepo(b)
	work := testenv.NewWorkClone(b, url)
	for i := 0; i < 50; i++ {
		work.WriteFile(fmt.Sprintf("nodes/node-%02d.yaml", i), fmt.Sprintf("name: node-%02d\nreached: \"0\"\n", i))
	}
	work.Commit("fifty nodes")
	for i := 1; i < 300; i++ {
		work.WriteFile(fmt.Sprintf("nodes/node-%02d.yaml", i%50), fmt.Sprintf("name: node-%02d\nreached: \"%d\"\n", i%50, i))
		work.Commit(fmt.Sprintf("round %d", i))
	}
	work.Push()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeUploadPack(w, r, dir, strings.TrimPrefix(r.URL.Path, "/peer/v1/git/status"))
	}))
	defer srv.Close()
	client, err := OpenBare(filepath.Join(b.TempDir(), "c.git"), url)
	if err != nil {
		b.Fatal(err)
	}
	into := plumbing.ReferenceName("refs/driftless/peer/main")
	if _, err := FetchFromPeer(context.Background(), client, srv.URL+"/peer/v1/git/status", nil, "refs/heads/main", into, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		work.WriteFile("nodes/node-07.yaml", fmt.Sprintf("name: node-07\nreached: \"b%d\"\n", i))
		work.Commit(fmt.Sprintf("bench %d", i))
		work.Push()
		b.StartTimer()
		if _, err := FetchFromPeer(context.Background(), client, srv.URL+"/peer/v1/git/status", nil, "refs/heads/main", into, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
