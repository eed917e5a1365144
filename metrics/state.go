package metrics

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

var (
	descReplicas = prometheus.NewDesc("driftless_replicas", "This node's replicas, by workload, phase and readiness.",
		[]string{"namespace", "kind", "workload", "phase", "ready"}, nil)
	descCluster = prometheus.NewDesc("driftless_cluster_replicas", "The cluster's replicas as the status branch records them, by node (exported by the leader).",
		[]string{"namespace", "kind", "workload", "phase", "ready", "node"}, nil)
	descCommit = prometheus.NewDesc("driftless_desired_commit_info", "The desired commit in force on this node (value 1).",
		[]string{"commit", "subject"}, nil)
	descLeader = prometheus.NewDesc("driftless_leader", "1 when this node is the scheduler leader, else 0; term is the status branch's.",
		[]string{"term"}, nil)
	descAlive = prometheus.NewDesc("driftless_node_alive", "1 for each node the status branch records alive, else 0 (exported by the leader).",
		[]string{"node"}, nil)
	descSuspended = prometheus.NewDesc("driftless_workload_suspended", "1 for each workload suspended (driftless suspend), as the status branch records it (exported by the leader).",
		[]string{"namespace", "kind", "workload"}, nil)
	descPending = prometheus.NewDesc("driftless_pending_replicas", "Replicas no node takes, by reason (exported by the leader).",
		[]string{"reason"}, nil)
)

// stateCollector computes the state gauges at scrape time.
type stateCollector struct {
	state func() State
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReplicas, descCluster, descCommit, descLeader, descAlive, descPending, descSuspended} {
		ch <- d
	}
}

type replicaKey struct {
	ns, kind, name, phase, ready, node string
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	leader := 0.0
	if st.IsLeader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader, strconv.FormatInt(st.Term, 10))
	if st.DesiredCommit != "" {
		ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, 1, st.DesiredCommit, subjectLabel(st.Subject))
	}
	here := map[replicaKey]int{}
	for _, r := range st.Replicas {
		here[keyOf(r.Workload, r.Status, "")]++
	}
	for k, n := range here {
		ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.GaugeValue, float64(n), k.ns, k.kind, k.name, k.phase, k.ready)
	}
	if !st.IsLeader || st.Cluster == nil {
		return
	}
	all := map[replicaKey]int{}
	pending := map[string]int{}
	for ref, p := range st.Cluster.Placements {
		if p.Suspended {
			ch <- prometheus.MustNewConstMetric(descSuspended, prometheus.GaugeValue, 1, ref.Namespace, ref.Kind, ref.Name)
		}
		for _, r := range p.Replicas {
			if r.Node == "" {
				pending[pendingReason(r.Pending)]++
				continue
			}
			s := manifest.ReplicaStatus{Phase: manifest.PhasePending}
			if r.Status != nil {
				s = *r.Status
			}
			all[keyOf(ref, s, r.Node)]++
		}
	}
	for k, n := range all {
		ch <- prometheus.MustNewConstMetric(descCluster, prometheus.GaugeValue, float64(n), k.ns, k.kind, k.name, k.phase, k.ready, k.node)
	}
	for reason, n := range pending {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(n), reason)
	}
	for name, n := range st.Cluster.Nodes {
		v := 0.0
		if n.State == status.NodeAlive {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descAlive, prometheus.GaugeValue, v, name)
	}
}

func keyOf(ref manifest.Ref, s manifest.ReplicaStatus, node string) replicaKey {
	phase := s.Phase
	if phase == "" {
		phase = manifest.PhasePending
	}
	return replicaKey{ref.Namespace, ref.Kind, ref.Name, phase, strconv.FormatBool(s.Ready), node}
}

// pendingReason is a pending replica's first reason without its node
// count ("2 node(s): insufficient cpu" → "insufficient cpu"), so that the
// label has few values.
func pendingReason(rs []string) string {
	if len(rs) == 0 {
		return "unknown"
	}
	r := rs[0]
	if _, after, ok := strings.Cut(r, " node(s): "); ok {
		r = after
	}
	if i := strings.IndexAny(r, "\"("); i > 0 {
		r = strings.TrimSpace(r[:i])
	}
	return r
}

// subjectLabel bounds a commit subject for a label.
func subjectLabel(s string) string {
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
