package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/internal/peerauth"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/sources/git"
)

// DefaultPeerPort is the peer listener's port unless told otherwise.
const DefaultPeerPort = 7481

// PeerAnswer is what /peer/v1/reconcile returns: the node after the
// pass it asked for.
type PeerAnswer struct {
	Node          string   `json:"node"`
	DesiredCommit string   `json:"desiredCommit,omitempty"`
	StatusCommit  string   `json:"statusCommit,omitempty"`
	Replicas      int      `json:"replicas"`
	Ready         int      `json:"ready"`
	Degraded      []string `json:"degraded,omitempty"`
	// Waited says whether a node pass finished before the answer.
	Waited bool `json:"waited"`
}

// PeerHandler serves the calls that cross nodes (the CLI's and other
// nodes'): a replica's logs, a reconcile now, the node's differences
// from its desired replicas. A node's call is signed with its node key
// and checked against the key it published on the status branch; the
// CLI's carries a bearer token derived from the gossip key
// (cluster.PeerToken). With insecure gossip (no key) and no signature,
// calls are not authenticated.
func (a *Agent) PeerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /peer/v1/logs", a.serveLogs)
	mux.HandleFunc("POST /peer/v1/reconcile", a.servePeerReconcile)
	mux.HandleFunc("GET /peer/v1/diff", a.servePeerDiff)
	// This node's clones, read-only, for peers that fetch from it rather
	// than from the Git host.
	for name, dir := range map[string]string{"desired": "desired", "status": "status"} {
		base := "/peer/v1/git/" + name
		path := filepath.Join(a.cfg.DataDir, "git", dir)
		serve := func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				a.deps.Metrics.PeerServed(name)
			}
			git.ServeUploadPack(w, r, path, strings.TrimPrefix(r.URL.Path, base))
		}
		mux.HandleFunc("GET "+base+"/info/refs", serve)
		mux.HandleFunc("POST "+base+"/git-upload-pack", serve)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node, err := a.peerAuthorized(r)
		// The repositories go to nodes only: a node's signature, never
		// the CLI's token or an unauthenticated listener.
		if err == nil && node == "" && strings.HasPrefix(r.URL.Path, "/peer/v1/git/") {
			err = errors.New("the repositories are served to nodes only (a call signed with a node key)")
		}
		if err != nil {
			a.log.Info("peer call refused", "from", r.RemoteAddr, "path", r.URL.Path, "err", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// peerAuthorized checks a peer call: the calling node when a node signed
// it, "" when the CLI's token (or an unauthenticated listener) let it in.
func (a *Agent) peerAuthorized(r *http.Request) (string, error) {
	node, err := peerauth.Verify(r, a.publishedKey, time.Now(), a.replays)
	if !errors.Is(err, peerauth.ErrUnsigned) {
		if err != nil {
			return "", err
		}
		return node, nil
	}
	if a.deps.PeerTokens.Len() == 0 {
		if a.cfg.InsecureGossip {
			return "", nil
		}
		return "", errors.New("this node has no peer token (no gossip key): only signed node calls are accepted")
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !a.deps.PeerTokens.Check(got) {
		return "", errors.New("missing or wrong peer token (derived from the gossip key)")
	}
	return "", nil
}

// publishedKey is the signing key node published on the status branch.
func (a *Agent) publishedKey(node string) (ssh.PublicKey, bool) {
	a.mu.Lock()
	st := a.snapState
	a.mu.Unlock()
	if st == nil {
		return nil, false
	}
	line := st.Nodes[node].SigningKey
	if line == "" {
		return nil, false
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, false
	}
	return k, true
}

// servePeerReconcile fetches the desired branch and runs a node pass now,
// and answers once the pass is done (at most 10 s later).
func (a *Agent) servePeerReconcile(w http.ResponseWriter, r *http.Request) {
	done := a.passes.Load()
	a.wantFetch()
	select {
	case a.nodeKick <- struct{}{}:
	default:
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	waited := false
	for ctx.Err() == nil {
		if a.passes.Load() > done {
			waited = true
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	s := a.Snapshot()
	ans := PeerAnswer{Node: a.cfg.Node, DesiredCommit: s.DesiredCommit, StatusCommit: s.StatusCommit, Replicas: len(s.Replicas), Degraded: s.Degraded, Waited: waited}
	for _, rv := range s.Replicas {
		if rv.Status.Ready {
			ans.Ready++
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

// servePeerDiff lists this node's containers against its desired replicas.
func (a *Agent) servePeerDiff(w http.ResponseWriter, r *http.Request) {
	in, _ := a.nodeIn.Get()
	d, ok := a.deps.Reconciler.(interface {
		Differences(context.Context, []reconcile.DesiredReplica) ([]reconcile.Difference, error)
	})
	if !ok {
		http.Error(w, "this node's runtime cannot list its containers", http.StatusNotImplemented)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ContainerdTimeout.Duration+time.Second)
	defer cancel()
	diffs, err := d.Differences(ctx, in.desired)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if diffs == nil {
		diffs = []reconcile.Difference{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Node        string                 `json:"node"`
		Desired     int                    `json:"desired"`
		Differences []reconcile.Difference `json:"differences"`
	}{a.cfg.Node, len(in.desired), diffs})
}

// servePeer runs the peer listener until ctx ends; off when PeerListen
// is "off" or no token can authenticate calls.
func (a *Agent) servePeer(ctx context.Context) (stop func(), err error) {
	addr := a.cfg.PeerListen
	if addr == "off" {
		return func() {}, nil
	}
	if a.deps.PeerTokens.Len() == 0 && !a.cfg.InsecureGossip {
		a.log.Info("peer listener off: no gossip key to derive its token from")
		return func() {}, nil
	}
	if addr == "" {
		addr = a.peerAddr()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("peer listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: a.PeerHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("peer listener", "err", err)
		}
	}()
	if a.deps.PeerTokens.Len() == 0 {
		a.log.Warn("peer listener NOT authenticated (insecure gossip): anyone who reaches it may read logs and trigger reconciles", "addr", ln.Addr().String())
	} else {
		a.log.Info("peer listener", "addr", ln.Addr().String())
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// peerAddr is where the peer listener listens, as other machines reach
// it: --peer-listen with an unspecified host made the node's address;
// "" when it is off.
func (a *Agent) peerAddr() string {
	addr := a.cfg.PeerListen
	switch addr {
	case "off":
		return ""
	case "":
		return net.JoinHostPort(a.nodeIP().String(), fmt.Sprint(DefaultPeerPort))
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = a.nodeIP().String()
	}
	return net.JoinHostPort(host, port)
}
