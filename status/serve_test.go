package status

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/sources/git"
)

// The peer listener serves the status clone while this node's own
// writes rewrite its refs (go-git rewrites a ref file in place): every
// answer is whole, none is a 500 "ref file is empty".
func TestServeWhileWriting(t *testing.T) {
	_, url := testenv.NewBareRepo(t)
	dir := filepath.Join(t.TempDir(), "status")
	s, err := Open(context.Background(), Config{URL: url, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, fleetNodes(20, 0))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		git.ServeUploadPack(w, r, dir, strings.TrimPrefix(r.URL.Path, "/s"))
	}))
	defer srv.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := map[string]int{}
	var mu sync.Mutex
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(srv.URL + "/s/info/refs?service=git-upload-pack")
				if err != nil {
					continue
				}
				if resp.StatusCode != 200 {
					b := make([]byte, 300)
					n, _ := resp.Body.Read(b)
					mu.Lock()
					errs[fmt.Sprint(resp.StatusCode, string(b[:n]))]++
					mu.Unlock()
				}
				resp.Body.Close()
			}
		}()
	}
	for i := 1; i < 30; i++ {
		mustUpdate(t, s, fleetNodes(20, i))
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("answers while the branch was written: %v", errs)
	}
}
