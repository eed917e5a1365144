package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/sources/git"
)

// A Git host that answers 429 with a Retry-After is not asked again
// before that time, by polls, webhook calls or a placement's commit; the
// poll after it comes with jitter.
func TestDesiredHostRetryAfter(t *testing.T) {
	testenv.Require(t, "git")
	ctx := context.Background()
	var calls atomic.Int32
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "120")
		http.Error(w, "rate limited", http.StatusTooManyRequests)
	}))
	defer host.Close()
	src, err := git.Open(ctx, git.Config{URL: host.URL + "/fleet.git", Dir: filepath.Join(t.TempDir(), "desired")})
	if err != nil {
		t.Fatal(err)
	}
	_, statusURL := testenv.NewBareRepo(t)
	cfg := DefaultConfig()
	cfg.Node, cfg.DataDir = "node-a", t.TempDir()
	cfg.Poll.Duration = time.Second
	a := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{Source: src, Status: openStatus(t, statusURL, "node-a"), Reconciler: &fakeReconciler{}})

	a.syncDesired(ctx)
	if calls.Load() == 0 || a.srcFails != 1 {
		t.Fatalf("first fetch: %d requests, %d failures", calls.Load(), a.srcFails)
	}
	asked := calls.Load()
	if p := a.nextPoll(); p < 119*time.Second || p > 121*time.Second+cfg.Poll.Duration {
		t.Fatalf("next poll in %s, want the host's 120 s and up to one poll more", p)
	}
	a.syncDesired(ctx) // a poll or a webhook call meanwhile
	if _, err := a.load(ctx, "0123456789abcdef0123456789abcdef01234567", nil); err == nil {
		t.Fatal("a commit the clone lacks loaded")
	}
	if calls.Load() != asked {
		t.Fatalf("the host was asked %d more times while it asked to wait", calls.Load()-asked)
	}
	if until := time.Until(a.loadRetry["0123456789abcdef0123456789abcdef01234567"]); until < 119*time.Second {
		t.Fatalf("the placement's commit is tried again in %s, before the host's wait ends", until)
	}
	// Once the wait is over, the host is asked again.
	a.fetchNotBefore = time.Now().Add(-time.Second)
	a.syncDesired(ctx)
	if calls.Load() == asked {
		t.Fatal("the host was not asked after its wait")
	}
}
