// Package metrics is the agent's Prometheus surface at /metrics. Event
// counters and durations are recorded as they happen; the state gauges
// (this node's replicas, and on the leader the cluster's) are computed
// at scrape time from the agent's published state, so a scrape never
// waits on a loop. Names follow the conventions of Flux and Argo CD; no
// label carries a Secret value or a per-container id.
//
// A nil *Metrics is valid and records nothing.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// Loops whose passes are timed.
const (
	LoopIntake = "intake"
	LoopLeader = "leader"
	LoopNode   = "node"
)

// Reasons a desired commit is refused (driftless_rejections_total).
const (
	RejectInvalid        = "invalid_manifests"
	RejectSignature      = "signature"
	RejectNonFastForward = "non_fast_forward"
	RejectLoad           = "load_error"
)

// Results of a push of the status branch.
const (
	PushOK       = "ok"
	PushConflict = "conflict"
	PushError    = "error"
)

// Replica is one replica as a node observed it.
type Replica struct {
	Workload manifest.Ref
	Index    int
	Status   manifest.ReplicaStatus
}

// State is what the state gauges are computed from at each scrape.
type State struct {
	Node     string
	IsLeader bool
	Term     int64
	// DesiredCommit is the commit in force, Subject its subject line.
	DesiredCommit, Subject string
	// Replicas are this node's replicas.
	Replicas []Replica
	// Cluster is the status branch as last read (the leader exports the
	// cluster's replicas, nodes and pending replicas from it).
	Cluster *status.State
}

// Metrics holds the agent's collectors.
type Metrics struct {
	reg *prometheus.Registry

	reconcile     *prometheus.HistogramVec
	fetches       *prometheus.CounterVec
	pushes        *prometheus.CounterVec
	statusCommits prometheus.Counter
	rejections    *prometheus.CounterVec
	schedPass     prometheus.Histogram
	restarts      *prometheus.CounterVec
	pulls         *prometheus.HistogramVec
	peerServed    *prometheus.CounterVec

	mu        sync.Mutex
	lastCount map[string]int // restarts seen per replica
}

// New registers every family; remotes are the desired repository's URLs
// (credentials stripped), whose fetch counters start at 0. state is
// called at each scrape and must be safe for concurrent use.
func New(remotes []string, state func() State) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), lastCount: map[string]int{}}
	m.reconcile = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "driftless_reconcile_duration_seconds", Help: "Duration of one pass of an agent loop (intake: fetch, verify, validate; leader: decide and commit status; node: reconcile containers).",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"loop"})
	m.fetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_git_fetch_total", Help: "Fetches of the desired repository, by remote and result.",
	}, []string{"remote", "result"})
	m.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_git_push_total", Help: "Compare-and-swap pushes of the status branch by this node, by result.",
	}, []string{"result"})
	m.statusCommits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "driftless_status_commits_total", Help: "Status commits this node made as leader.",
	})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_rejections_total", Help: "Desired commits refused, by reason.",
	}, []string{"reason"})
	m.schedPass = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "driftless_scheduler_pass_duration_seconds", Help: "Duration of one leader decision (controllers and scheduler).",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
	})
	m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_container_restarts_total", Help: "Container restarts of this node's replicas, by workload.",
	}, []string{"namespace", "kind", "workload"})
	m.pulls = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "driftless_image_pull_duration_seconds", Help: "Duration of making a replica's image available (pull or archive import), by result.",
		Buckets: []float64{.01, .1, .5, 1, 5, 15, 30, 60, 120, 300, 600},
	}, []string{"result"})
	m.peerServed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_peer_git_served_total", Help: "Fetches this node's peer listener served to other nodes, by repository (desired, status).",
	}, []string{"repo"})
	for _, r := range []string{"desired", "status"} {
		m.peerServed.WithLabelValues(r)
	}
	for _, l := range []string{LoopIntake, LoopLeader, LoopNode} {
		m.reconcile.WithLabelValues(l)
	}
	for _, r := range remotes {
		m.fetches.WithLabelValues(r, "ok")
		m.fetches.WithLabelValues(r, "error")
	}
	for _, r := range []string{PushOK, PushConflict, PushError} {
		m.pushes.WithLabelValues(r)
	}
	for _, r := range []string{RejectInvalid, RejectSignature, RejectNonFastForward, RejectLoad} {
		m.rejections.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.pulls.WithLabelValues(r)
	}
	m.reg.MustRegister(m.reconcile, m.fetches, m.pushes, m.statusCommits, m.rejections, m.schedPass, m.restarts, m.pulls, m.peerServed,
		&stateCollector{state: state},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil})
}

// Loop records one pass of a loop.
func (m *Metrics) Loop(loop string, d time.Duration) {
	if m != nil {
		m.reconcile.WithLabelValues(loop).Observe(d.Seconds())
	}
}

// Fetch records a fetch of the desired repository from remote.
func (m *Metrics) Fetch(remote string, err error) {
	if m == nil {
		return
	}
	r := "ok"
	if err != nil {
		r = "error"
	}
	m.fetches.WithLabelValues(git.RedactURL(remote), r).Inc()
}

// PeerServed records a fetch of repo (desired, status) this node served
// to a peer.
func (m *Metrics) PeerServed(repo string) {
	if m != nil {
		m.peerServed.WithLabelValues(repo).Inc()
	}
}

// Push records a push of the status branch.
func (m *Metrics) Push(result string) {
	if m != nil {
		m.pushes.WithLabelValues(result).Inc()
	}
}

// StatusCommit records a status commit made.
func (m *Metrics) StatusCommit() {
	if m != nil {
		m.statusCommits.Inc()
	}
}

// Rejection records a refused desired commit.
func (m *Metrics) Rejection(reason string) {
	if m != nil {
		m.rejections.WithLabelValues(reason).Inc()
	}
}

// SchedulerPass records one leader decision.
func (m *Metrics) SchedulerPass(d time.Duration) {
	if m != nil {
		m.schedPass.Observe(d.Seconds())
	}
}

// ImagePull records one image made available (or not).
func (m *Metrics) ImagePull(d time.Duration, err error) {
	if m == nil {
		return
	}
	r := "ok"
	if err != nil {
		r = "error"
	}
	m.pulls.WithLabelValues(r).Observe(d.Seconds())
}

// Observed counts the restarts in a node's observation since the last
// one: a replica's restart count that grew adds the difference.
func (m *Metrics) Observed(rs []Replica) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		key := r.Workload.String() + "/" + strconv.Itoa(r.Index)
		seen[key] = true
		last, had := m.lastCount[key]
		m.lastCount[key] = r.Status.Restarts
		if had && r.Status.Restarts > last {
			m.restarts.WithLabelValues(r.Workload.Namespace, r.Workload.Kind, r.Workload.Name).Add(float64(r.Status.Restarts - last))
		}
	}
	for k := range m.lastCount {
		if !seen[k] {
			delete(m.lastCount, k)
		}
	}
}
