package git

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/config"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/sources"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:token@git.example.internal/a/b.git": "https://git.example.internal/a/b.git",
		"ssh://git@git.example.internal:2222/fleet.git":   "ssh://git.example.internal:2222/fleet.git",
		"file:///srv/fleet.git":                           "file:///srv/fleet.git",
		"git://host/fleet.git":                            "git://host/fleet.git",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactError(t *testing.T) {
	url := "https://deploy:s3cret-token@git.example.internal/fleet.git"
	err := RedactError(errors.New(`Get "https://deploy:s3cret-token@git.example.internal/fleet.git/info/refs": x509: certificate signed by unknown authority; password s3cret-token`), url)
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "https://git.example.internal/fleet.git/info/refs") {
		t.Fatalf("%v", err)
	}
}

// A Git host that answers 429 or 503 is told apart from one that is
// down: the error says so and carries the wait of its Retry-After
// header, in seconds or as a date.
func TestFetchThrottled(t *testing.T) {
	var answer atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answer.Load().([2]string)
		if a[1] != "" {
			w.Header().Set("Retry-After", a[1])
		}
		code, _ := strconv.Atoi(a[0])
		http.Error(w, "slow down", code)
	}))
	defer srv.Close()
	repo, err := OpenBare(filepath.Join(t.TempDir(), "c.git"), srv.URL+"/fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		code, header string
		want         time.Duration
		throttled    bool
	}{
		{"429", "7", 7 * time.Second, true},
		{"503", date, 90 * time.Second, true},
		{"429", "", 0, true},
		{"429", "86400", sources.MaxRetryAfter, true},
		{"500", "7", 0, false},
	} {
		answer.Store([2]string{c.code, c.header})
		err := Fetch(context.Background(), repo, srv.URL+"/fleet.git", Access{}, []config.RefSpec{"+refs/heads/main:refs/remotes/origin/main"})
		if !errors.Is(err, sources.ErrUnreachable) {
			t.Fatalf("%s: %v, want ErrUnreachable", c.code, err)
		}
		var th *sources.Throttled
		if errors.As(err, &th) != c.throttled {
			t.Fatalf("%s %q: throttled %v, want %v: %v", c.code, c.header, !c.throttled, c.throttled, err)
		}
		got, _ := sources.RetryAfter(err)
		if d := got - c.want; d < -2*time.Second || d > 2*time.Second {
			t.Fatalf("%s %q: waits %s, want %s (%v)", c.code, c.header, got, c.want, err)
		}
		if c.throttled && !strings.Contains(err.Error(), "answered "+c.code) {
			t.Fatalf("%s: the error does not say what the host answered: %v", c.code, err)
		}
	}
}

// A client certificate needs its key, and the two must match; the git
// CLI gets them through its own variables.
func TestClientCertificateAccess(t *testing.T) {
	ca := testenv.NewCA(t, "test CA")
	dir := t.TempDir()
	cert, key := ca.IssueClient(t, dir, "node-1")
	_, otherKey := ca.IssueClient(t, dir, "node-2")
	acc, err := Auth{ClientCertFile: cert, ClientKeyFile: key}.Access("https://git.example.internal/fleet.git")
	if err != nil || len(acc.ClientCert) == 0 || len(acc.ClientKey) == 0 {
		t.Fatalf("a matching pair: %v", err)
	}
	if _, err := (Auth{ClientCertFile: cert}).Access("https://git.example.internal/fleet.git"); err == nil || !strings.Contains(err.Error(), "--client-key-file") {
		t.Fatalf("a certificate without its key: %v", err)
	}
	if _, err := (Auth{ClientCertFile: cert, ClientKeyFile: otherKey}).Access("https://git.example.internal/fleet.git"); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("another certificate's key: %v", err)
	}
	if acc, err := (Auth{ClientCertFile: cert, ClientKeyFile: key}).Access("git://git.example.internal/fleet.git"); err != nil || acc.ClientCert != nil {
		t.Fatalf("git:// gets no certificate: %v", err)
	}
	env, err := Auth{ClientCertFile: cert, ClientKeyFile: key}.CLIEnv("https://git.example.internal/fleet.git")
	if err != nil || !strings.Contains(strings.Join(env, " "), "GIT_SSL_CERT="+cert) || !strings.Contains(strings.Join(env, " "), "GIT_SSL_KEY="+key) {
		t.Fatalf("CLI environment: %v %v", env, err)
	}
}
