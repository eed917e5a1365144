package status

import (
	"sort"
	"time"

	"driftless.dev/driftless/manifest"
)

// Event kinds, as `driftless history` shows them.
const (
	EventAccepted = "accepted" // a desired commit came into force
	EventRefused  = "refused"  // a desired commit was rejected
	EventLeader   = "leader"   // a new term began
	EventPlaced   = "placed"   // a workload's replicas were bound to nodes
	EventRemoved  = "removed"  // a workload's placement was dropped
	EventReplica  = "replica"  // a node reported a replica's state
	EventReached  = "reached"  // a node ran every replica a desired commit placed there
)

// Event is one thing the status branch records about a desired commit.
type Event struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// DesiredCommit is the desired commit the event is about.
	DesiredCommit string `json:"desiredCommit,omitempty"`
	// StatusCommit is the status commit that recorded it.
	StatusCommit string        `json:"statusCommit"`
	Leader       string        `json:"leader"`
	Term         int64         `json:"term"`
	Workload     *manifest.Ref `json:"workload,omitempty"`
	Replica      *int          `json:"replica,omitempty"`
	Node         string        `json:"node,omitempty"`
	Phase        string        `json:"phase,omitempty"`
	Ready        bool          `json:"ready,omitempty"`
	Reason       string        `json:"reason,omitempty"`
	Restarts     int           `json:"restarts,omitempty"`
	// Nodes lists where a placed workload's replicas went; Pending counts
	// replicas no node fits.
	Nodes   []string `json:"nodes,omitempty"`
	Pending int      `json:"pending,omitempty"`
	// Errors are a refusal's reasons.
	Errors []string `json:"errors,omitempty"`
}

// Events derives, from a status branch's log (oldest first), what happened
// to desired commits: by comparing each commit's tree with the one before.
// Pure: no I/O.
func Events(log []Entry) []Event {
	var out []Event
	prev := (*State)(nil).Clone()
	for _, e := range log {
		if e.State == nil {
			continue
		}
		cur := e.State
		base := Event{Time: e.Time.UTC(), StatusCommit: e.Hash, Leader: cur.Cluster.Leader, Term: cur.Cluster.Term}
		add := func(ev Event) {
			out = append(out, ev)
		}
		if cur.Cluster.Term != prev.Cluster.Term || cur.Cluster.Leader != prev.Cluster.Leader {
			ev := base
			ev.Kind, ev.DesiredCommit = EventLeader, cur.Cluster.DesiredCommit
			add(ev)
		}
		if d := cur.Cluster.DesiredCommit; d != "" && d != prev.Cluster.DesiredCommit {
			ev := base
			ev.Kind, ev.DesiredCommit = EventAccepted, d
			add(ev)
		}
		if r := cur.Cluster.LastRejection; r != nil {
			if p := prev.Cluster.LastRejection; p == nil || p.Commit != r.Commit || !p.Time.Equal(r.Time) {
				ev := base
				ev.Kind, ev.DesiredCommit, ev.Errors = EventRefused, r.Commit, r.Errors
				if !r.Time.IsZero() {
					ev.Time = r.Time.UTC()
				}
				add(ev)
			}
		}
		for _, name := range sortedNodeNames(cur.Nodes) {
			r := cur.Nodes[name].DesiredCommitReached
			if r != "" && r != prev.Nodes[name].DesiredCommitReached {
				ev := base
				ev.Kind, ev.DesiredCommit, ev.Node = EventReached, r, name
				add(ev)
			}
		}
		for _, ref := range manifest.SortedRefs(cur.Placements, prev.Placements) {
			ref := ref
			p, has := cur.Placements[ref]
			o, had := prev.Placements[ref]
			if !has {
				ev := base
				ev.Kind, ev.DesiredCommit, ev.Workload = EventRemoved, cur.Cluster.DesiredCommit, &ref
				add(ev)
				continue
			}
			// Every accepted commit re-stamps each placement; only a new
			// spec or new nodes is a placement worth showing.
			if !had || manifest.Rebound(o, p) {
				ev := base
				ev.Kind, ev.DesiredCommit, ev.Workload = EventPlaced, p.DesiredCommit, &ref
				for _, r := range p.Replicas {
					if r.Node == "" {
						ev.Pending++
					} else {
						ev.Nodes = append(ev.Nodes, r.Node)
					}
				}
				add(ev)
			}
			old := map[int]manifest.ReplicaPlacement{}
			for _, r := range o.Replicas {
				old[r.Index] = r
			}
			for _, r := range p.Replicas {
				if r.Status == nil || r.Node == "" {
					continue
				}
				or, ok := old[r.Index]
				if ok && or.Node == r.Node && or.Status != nil && *or.Status == *r.Status && or.SpecHash == r.SpecHash {
					continue
				}
				idx := r.Index
				ev := base
				ev.Kind, ev.DesiredCommit, ev.Workload, ev.Replica, ev.Node = EventReplica, p.DesiredCommit, &ref, &idx, r.Node
				ev.Phase, ev.Ready, ev.Reason, ev.Restarts = r.Status.Phase, r.Status.Ready, r.Status.Reason, r.Status.Restarts
				add(ev)
			}
		}
		prev = cur
	}
	return out
}

func sortedNodeNames(m map[string]NodeStatus) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
