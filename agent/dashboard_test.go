package agent

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

func TestDashboardServedAndClusterView(t *testing.T) {
	a := New(Config{Node: "n1"}, nil, Deps{})
	ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	st := (*status.State)(nil).Clone()
	st.Cluster.Leader, st.Cluster.Term = "n1", 2
	st.Nodes["n1"] = status.NodeStatus{Name: "n1", State: status.NodeAlive}
	st.Placements[ref] = manifest.Placement{Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: "n2"}}}
	a.mu.Lock()
	a.snapState = st
	a.mu.Unlock()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "<title>driftless</title>") || strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
		t.Fatalf("dashboard: %d (it must load nothing from elsewhere)", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/api/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	var v ClusterView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v.Cluster.Leader != "n1" || len(v.Placements) != 1 || v.Placements[0].Workload != ref || len(v.Nodes) != 1 {
		t.Fatalf("cluster view %+v", v)
	}
	// Logs of a replica placed elsewhere: 404 naming its node.
	resp, err = http.Get(srv.URL + "/api/v1/logs?workload=default/Deployment/web&replica=0")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "runs on node n2") {
		t.Fatalf("logs elsewhere: %d %s", resp.StatusCode, b)
	}
}

// The change stream announces each change once, and refuses dashboards
// beyond its bound instead of growing.
func TestWatchStreamBounded(t *testing.T) {
	a := New(Config{Node: "n1"}, nil, Deps{})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	events := make(chan string, 10)
	go func() {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				close(events)
				return
			}
			if strings.HasPrefix(l, "event: ") {
				events <- strings.TrimSpace(l)
			}
		}
	}()
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-time.After(3 * time.Second):
			return ""
		}
	}
	if e := next(); e != "event: change" {
		t.Fatalf("first event %q", e)
	}
	a.watch.changed([]byte("a"))
	a.watch.changed([]byte("a")) // no change: no event
	if e := next(); e != "event: change" {
		t.Fatalf("after a change: %q", e)
	}
	select {
	case e := <-events:
		t.Fatalf("an event without a change: %q", e)
	case <-time.After(300 * time.Millisecond):
	}
	for a.watch.count() < maxWatchers {
		if _, ok := a.watch.subscribe(); !ok {
			t.Fatal("refused below the bound")
		}
	}
	over, err := http.Get(srv.URL + "/api/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	over.Body.Close()
	if over.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("beyond the bound: %d", over.StatusCode)
	}
}

func TestCommitURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/acme/fleet.git":         "https://github.com/acme/fleet/commit/{commit}",
		"https://user:tok@gitea.example/acme/fleet": "https://gitea.example/acme/fleet/commit/{commit}",
		"git://git.example/fleet.git":               "",
		"file:///srv/fleet.git":                     "",
		"git@github.com:acme/fleet.git":             "",
		"https://git.example/":                      "",
	} {
		if got := commitURL(in); got != want {
			t.Errorf("commitURL(%q) = %q, want %q", in, got, want)
		}
	}
}
