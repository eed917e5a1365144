package agent

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/metrics"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
)

// Snapshot is the agent's state as served at /api/v1/status.
type Snapshot struct {
	Node          string            `json:"node"`
	StartedAt     time.Time         `json:"startedAt"`
	DesiredCommit string            `json:"desiredCommit,omitempty"`
	StatusCommit  string            `json:"statusCommit,omitempty"`
	Leader        string            `json:"leader,omitempty"`
	Term          int64             `json:"term,omitempty"`
	IsLeader      bool              `json:"isLeader"`
	LastRejection *status.Rejection `json:"lastRejection,omitempty"`
	Source        SourceStatus      `json:"source"`
	Webhook       WebhookStatus     `json:"webhook"`
	RuntimeError  string            `json:"runtimeError,omitempty"`
	StatusError   string            `json:"statusError,omitempty"`
	// StatusMirrors says why the status branch's mirrors disagree (a
	// fork neither side contains); "" when they agree.
	StatusMirrors string `json:"statusMirrors,omitempty"`
	// ServicesError is why the Service rules could not be programmed.
	ServicesError string `json:"servicesError,omitempty"`
	// Degraded names the parts that fail now: "source" (the desired
	// repository), "status" (the status branch), "status-mirrors" (its
	// mirrors have forked), "runtime" (containerd),
	// "services" (the Service rules or pod routes of this node).
	// Empty when all answer. The agent keeps running either way.
	Degraded []string      `json:"degraded,omitempty"`
	Replicas []ReplicaView `json:"replicas"`
	// Warnings are the manifest warnings of the desired commit in force
	// on this node (a Secret stored in plain text, ...).
	Warnings []string `json:"warnings,omitempty"`
	// Services are the Services as this node programs them (address,
	// ports, endpoints), from the status commit it read.
	Services []services.Record `json:"services"`
}

// SourceStatus says whether the desired repository answers.
type SourceStatus struct {
	OK   bool   `json:"ok"`
	Head string `json:"head,omitempty"`
	// Remote is the URL the last successful fetch used (the first of
	// --repo unless it failed and a mirror answered).
	Remote      string    `json:"remote,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	LastAttempt time.Time `json:"lastAttempt,omitempty"`
	LastSuccess time.Time `json:"lastSuccess,omitempty"`
}

// ReplicaView is one replica placed on this node and what was observed.
type ReplicaView struct {
	Workload manifest.Ref           `json:"workload"`
	Index    int                    `json:"index"`
	SpecHash string                 `json:"specHash"`
	Status   manifest.ReplicaStatus `json:"status"`
}

// Handler serves /healthz and /api/v1/status. /healthz answers as long as
// the process runs its loop, whatever Git or containerd do: their state is
// in the status document, not in liveness.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Snapshot())
	})
	if len(a.deps.WebhookSecret) > 0 {
		mux.HandleFunc("POST /hooks/git", a.serveWebhook)
	}
	if a.deps.Metrics != nil {
		mux.Handle("GET /metrics", a.deps.Metrics.Handler())
	}
	a.dashboardRoutes(mux)
	return mux
}

// Snapshot returns a copy of the agent's current state. Safe for
// concurrent use.
func (a *Agent) Snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.snap
	s.Replicas = append([]ReplicaView(nil), a.snap.Replicas...)
	if s.Services == nil {
		s.Services = []services.Record{}
	}
	s.Degraded = nil
	if !s.Source.OK && s.Source.LastError != "" {
		s.Degraded = append(s.Degraded, "source")
	}
	if s.StatusError != "" {
		s.Degraded = append(s.Degraded, "status")
	}
	if s.StatusMirrors != "" {
		s.Degraded = append(s.Degraded, "status-mirrors")
	}
	if s.RuntimeError != "" {
		s.Degraded = append(s.Degraded, "runtime")
	}
	if s.ServicesError != "" {
		s.Degraded = append(s.Degraded, "services")
	}
	return s
}

// setStatusError records whether the status branch answered, and
// whether its mirrors agree.
func (a *Agent) setStatusError(err error) {
	forked := ""
	if f, ok := a.deps.Status.(interface{ Forked() string }); ok {
		forked = f.Forked()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if forked != a.snap.StatusMirrors {
		if forked != "" {
			a.log.Warn("status mirrors disagree", "why", forked)
		} else {
			a.log.Info("status mirrors agree again")
		}
		a.snap.StatusMirrors = forked
	}
	if a.schemaStop != nil {
		return
	}
	a.snap.StatusError = ""
	if err != nil {
		a.snap.StatusError = err.Error()
	}
}

func (a *Agent) setSource(f func(*SourceStatus)) {
	a.mu.Lock()
	f(&a.snap.Source)
	a.mu.Unlock()
}

func (a *Agent) setServicesError(err error) {
	a.mu.Lock()
	a.snap.ServicesError = ""
	if err != nil {
		a.snap.ServicesError = err.Error()
	}
	a.mu.Unlock()
}

func (a *Agent) setRuntimeError(e string) {
	a.mu.Lock()
	a.snap.RuntimeError = e
	a.mu.Unlock()
}

// publish copies the loop's state into the snapshot.
func (a *Agent) publish() {
	var views []ReplicaView
	observed := a.observedHere()
	var rej *status.Rejection
	var head, leader string
	var term int64
	if a.committed != nil {
		head, leader, term = a.committed.Head, a.committed.Cluster.Leader, a.committed.Cluster.Term
		rej = a.committed.Cluster.LastRejection
		for ref, p := range a.committed.Placements {
			for _, r := range p.Replicas {
				if r.Node != a.cfg.Node {
					continue
				}
				v := ReplicaView{Workload: ref, Index: r.Index, SpecHash: r.SpecHash}
				if o, ok := observed[keyOf(ref, r.Index)]; ok {
					v.Status = o
				} else if r.Status != nil {
					v.Status = *r.Status
				} else {
					v.Status = manifest.ReplicaStatus{Phase: manifest.PhasePending}
				}
				views = append(views, v)
			}
		}
	}
	if a.view.rejection != nil && a.view.rejection != a.rejDone {
		rej = a.view.rejection
	}
	sort.Slice(views, func(i, j int) bool {
		if views[i].Workload != views[j].Workload {
			return views[i].Workload.String() < views[j].Workload.String()
		}
		return views[i].Index < views[j].Index
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	a.snap.DesiredCommit = a.view.inForceCommit()
	if !a.isLeader() && a.committed != nil {
		a.snap.DesiredCommit = a.committed.Cluster.DesiredCommit
	}
	a.snap.Services = nil
	if in, ok := a.netIn.Get(); ok {
		a.snap.Services = in.recs
	}
	a.snap.IsLeader = a.isLeader()
	a.snap.StatusCommit = head
	a.snap.Leader = leader
	a.snap.Term = term
	a.snap.LastRejection = rej
	a.snap.Warnings = nil
	if a.view.inForce != nil {
		for _, w := range a.view.inForce.set.Warnings {
			a.snap.Warnings = append(a.snap.Warnings, w.String())
		}
	}
	a.snap.Replicas = views
	a.snapState = a.committed
	a.snapSubject = ""
	if a.view.inForce != nil {
		a.snapSubject = a.view.inForce.rev.Subject
	}
	if sig, err := json.Marshal(struct {
		S Snapshot
		H string
	}{a.snap, head}); err == nil {
		a.watch.changed(sig)
	}
	if a.schemaStop != nil {
		a.snap.StatusError = a.schemaStop.Error()
	}
}

// MetricsState is what /metrics computes its gauges from. Safe for
// concurrent use.
func (a *Agent) MetricsState() metrics.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := metrics.State{Node: a.cfg.Node, IsLeader: a.snap.IsLeader, Term: a.snap.Term, DesiredCommit: a.snap.DesiredCommit,
		Subject: a.snapSubject, Cluster: a.snapState}
	for _, r := range a.snap.Replicas {
		st.Replicas = append(st.Replicas, metrics.Replica{Workload: r.Workload, Index: r.Index, Status: r.Status})
	}
	return st
}
