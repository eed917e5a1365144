package metrics

import (
	"errors"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

func scrape(t *testing.T, m *Metrics) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return fams, body
}

// value is the value of the series of family name with exactly labels.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		match := len(got) == len(labels)
		for k, v := range labels {
			match = match && got[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

var web = manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}

func TestEveryFamilyFromTheFirstScrape(t *testing.T) {
	m := New([]string{"https://git.example.internal/fleet.git"}, func() State { return State{Node: "n1"} })
	fams, body := scrape(t, m)
	for _, name := range []string{"driftless_reconcile_duration_seconds", "driftless_git_fetch_total", "driftless_git_push_total",
		"driftless_status_commits_total", "driftless_rejections_total", "driftless_scheduler_pass_duration_seconds",
		"driftless_image_pull_duration_seconds", "driftless_peer_git_served_total", "driftless_leader", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("family %s missing from the first scrape", name)
		}
	}
	for _, reason := range []string{RejectInvalid, RejectSignature, RejectNonFastForward, RejectLoad} {
		if v, ok := value(fams, "driftless_rejections_total", map[string]string{"reason": reason}); !ok || v != 0 {
			t.Errorf("rejections{reason=%s} = %v, %v; want 0", reason, v, ok)
		}
	}
	if v, ok := value(fams, "driftless_git_fetch_total", map[string]string{"remote": "https://git.example.internal/fleet.git", "result": "error"}); !ok || v != 0 {
		t.Errorf("fetch errors %v %v", v, ok)
	}
	if v, _ := value(fams, "driftless_leader", map[string]string{"term": "0"}); v != 0 {
		t.Errorf("leader %v", v)
	}
	promtool(t, body)
}

func TestEventsAndState(t *testing.T) {
	st := State{Node: "n1", IsLeader: true, Term: 4, DesiredCommit: "abc123", Subject: "web v2",
		Replicas: []Replica{
			{Workload: web, Index: 0, Status: manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true}},
			{Workload: web, Index: 1, Status: manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true}},
			{Workload: web, Index: 2, Status: manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "ErrImagePull"}},
		},
		Cluster: &status.State{
			Nodes: map[string]status.NodeStatus{"n1": {State: status.NodeAlive}, "n2": {State: status.NodeDead}},
			Placements: map[manifest.Ref]manifest.Placement{web: {Suspended: true, Replicas: []manifest.ReplicaPlacement{
				{Index: 0, Node: "n1", Status: &manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true}},
				{Index: 1, Node: "n2"},
				{Index: 2, Pending: []string{"2 node(s): insufficient cpu", "1 node(s): not alive"}},
			}}},
		},
	}
	m := New([]string{"file:///srv/fleet.git"}, func() State { return st })
	m.Fetch("https://deploy:s3cret@git.example.internal/fleet.git", nil)
	m.Fetch("file:///srv/fleet.git", errors.New("unreachable"))
	m.Rejection(RejectInvalid)
	m.Push(PushConflict)
	m.StatusCommit()
	m.Loop(LoopNode, 30*time.Millisecond)
	m.ImagePull(2*time.Second, nil)
	m.Observed([]Replica{{Workload: web, Index: 0, Status: manifest.ReplicaStatus{Restarts: 1}}})
	m.Observed([]Replica{{Workload: web, Index: 0, Status: manifest.ReplicaStatus{Restarts: 3}}})
	m.Observed([]Replica{{Workload: web, Index: 0, Status: manifest.ReplicaStatus{Restarts: 3}}})
	fams, body := scrape(t, m)
	if strings.Contains(body, "s3cret") {
		t.Fatalf("a credential in the metrics:\n%s", body)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"driftless_git_fetch_total", map[string]string{"remote": "https://git.example.internal/fleet.git", "result": "ok"}, 1},
		{"driftless_git_fetch_total", map[string]string{"remote": "file:///srv/fleet.git", "result": "error"}, 1},
		{"driftless_rejections_total", map[string]string{"reason": RejectInvalid}, 1},
		{"driftless_git_push_total", map[string]string{"result": PushConflict}, 1},
		{"driftless_status_commits_total", map[string]string{}, 1},
		{"driftless_reconcile_duration_seconds", map[string]string{"loop": LoopNode}, 1},
		{"driftless_image_pull_duration_seconds", map[string]string{"result": "ok"}, 1},
		{"driftless_container_restarts_total", map[string]string{"namespace": "default", "kind": "Deployment", "workload": "web"}, 2},
		{"driftless_replicas", map[string]string{"namespace": "default", "kind": "Deployment", "workload": "web", "phase": "Running", "ready": "true"}, 2},
		{"driftless_replicas", map[string]string{"namespace": "default", "kind": "Deployment", "workload": "web", "phase": "Pending", "ready": "false"}, 1},
		{"driftless_cluster_replicas", map[string]string{"namespace": "default", "kind": "Deployment", "workload": "web", "phase": "Running", "ready": "true", "node": "n1"}, 1},
		{"driftless_cluster_replicas", map[string]string{"namespace": "default", "kind": "Deployment", "workload": "web", "phase": "Pending", "ready": "false", "node": "n2"}, 1},
		{"driftless_pending_replicas", map[string]string{"reason": "insufficient cpu"}, 1},
		{"driftless_node_alive", map[string]string{"node": "n1"}, 1},
		{"driftless_node_alive", map[string]string{"node": "n2"}, 0},
		{"driftless_leader", map[string]string{"term": "4"}, 1},
		{"driftless_workload_suspended", map[string]string{"namespace": "default", "kind": "Deployment", "workload": "web"}, 1},
		{"driftless_desired_commit_info", map[string]string{"commit": "abc123", "subject": "web v2"}, 1},
	} {
		if v, ok := value(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	promtool(t, body)
	// A follower exports no cluster-wide families.
	st.IsLeader = false
	fams, _ = scrape(t, m)
	for _, name := range []string{"driftless_cluster_replicas", "driftless_node_alive", "driftless_pending_replicas"} {
		if _, ok := fams[name]; ok {
			t.Errorf("a follower exports %s", name)
		}
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Fetch("x", nil)
	m.Rejection(RejectLoad)
	m.Push(PushOK)
	m.StatusCommit()
	m.Loop(LoopIntake, time.Second)
	m.SchedulerPass(time.Second)
	m.ImagePull(time.Second, nil)
	m.Observed(nil)
}

// promtool checks the exposition the way Prometheus' own linter does;
// it must be there under CI.
func promtool(t *testing.T, body string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if testingCI() {
			t.Fatal("promtool not found (Debian's prometheus package)")
		}
		t.Log("promtool not found: lint skipped (install Debian's prometheus package)")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
