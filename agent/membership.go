package agent

import (
	"fmt"
	"runtime"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/status"
)

// Membership is what the agent needs of gossip. Nil means standalone: a
// cluster of one, where this node always leads.
type Membership interface {
	Members() []cluster.Member
	SetReport(replicas map[string]manifest.ReplicaStatus, reached string)
	Reports() map[string]cluster.Report
	Hint(cluster.Hint)
	Hints() <-chan cluster.Hint
	Changes() <-chan struct{}
}

func reportKey(ref manifest.Ref, idx int) string {
	return fmt.Sprintf("%s/%d", ref, idx)
}

// members returns the gossip view, or this node alone when standalone.
func (a *Agent) members() []cluster.Member {
	if a.deps.Cluster == nil {
		return []cluster.Member{{Name: a.cfg.Node, Alive: true, Meta: a.meta()}}
	}
	return a.deps.Cluster.Members()
}

// meta is this node's published inventory.
func (a *Agent) meta() cluster.NodeMeta {
	m := cluster.NodeMeta{Labels: a.cfg.Labels, CPUMilli: int64(runtime.NumCPU()) * 1000, MemoryBytes: reconcile.HostMemory(), Version: a.cfg.Version, API: a.cfg.Listen}
	if a.deps.NodeKey != nil {
		m.SigningKey = status.PublicKeyLine(a.deps.NodeKey.PublicKey())
	}
	if q, err := resource.ParseQuantity(a.cfg.Capacity["cpu"]); err == nil {
		m.CPUMilli = q.MilliValue()
	}
	if q, err := resource.ParseQuantity(a.cfg.Capacity["memory"]); err == nil {
		m.MemoryBytes = q.Value()
	}
	return m
}

// isLeader: the committed leader while gossip sees it alive, else the
// deterministic candidate among alive members; either only while seeing a
// majority of the nodes known on the status branch (and, for a new
// cluster, at least --bootstrap-expect nodes). Git fences the rest: the
// claim is a compare-and-swap push of Term+1.
func (a *Agent) isLeader() bool {
	if a.deps.Cluster == nil {
		return true
	}
	ms := a.members()
	// The committed leader keeps leading while gossip sees it alive, so a
	// returning node with a lower name does not take over, and two nodes
	// whose views differ do not take turns claiming terms.
	leader := ""
	if a.committed != nil {
		leader = a.committed.Cluster.Leader
	}
	switch {
	case leader == a.cfg.Node:
	case leader != "" && aliveIn(ms, leader):
		return false
	case cluster.Candidate(ms) != a.cfg.Node:
		return false
	}
	known := map[string]bool{a.cfg.Node: true}
	if a.committed != nil {
		for n, ns := range a.committed.Nodes {
			if ns.State != "removed" {
				known[n] = true
			}
		}
	}
	alive, aliveAll := 0, 0
	for _, m := range ms {
		if !m.Alive {
			continue
		}
		aliveAll++
		if known[m.Name] {
			alive++
		}
	}
	if (a.committed == nil || len(a.committed.Nodes) == 0) && aliveAll < a.cfg.BootstrapExpect {
		return false
	}
	return cluster.HasMajority(alive, len(known))
}

func (a *Agent) reports() map[string]cluster.Report {
	if a.deps.Cluster == nil {
		return nil
	}
	return a.deps.Cluster.Reports()
}

func aliveIn(ms []cluster.Member, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return m.Alive
		}
	}
	return false
}

// inventory merges gossip, the branch and the Node policies into the
// scheduler's view and the nodes/ files. A node gossip calls dead keeps
// its replicas for NodeGrace (cordoned meanwhile), then loses them.
func (a *Agent) inventory(cur *status.State, now time.Time) ([]scheduler.Node, map[string]status.NodeStatus) {
	files := map[string]status.NodeStatus{}
	for name, ns := range cur.Nodes {
		files[name] = ns
	}
	seen := map[string]bool{}
	reps := a.reports()
	for _, m := range a.members() {
		seen[m.Name] = true
		ns := files[m.Name]
		ns.SchemaVersion = status.SchemaVersion
		ns.Name = m.Name
		ns.Labels = m.Meta.Labels
		if m.Meta.SigningKey != "" {
			ns.SigningKey = m.Meta.SigningKey
		}
		ns.Capacity = map[string]string{}
		if m.Meta.CPUMilli > 0 {
			ns.Capacity["cpu"] = resource.NewMilliQuantity(m.Meta.CPUMilli, resource.DecimalSI).String()
		}
		if m.Meta.MemoryBytes > 0 {
			// Whole MiB: capacity is for people to read and the scheduler to
			// compare; a byte count like 24684092Ki helps neither.
			ns.Capacity["memory"] = resource.NewQuantity(m.Meta.MemoryBytes/(1<<20)*(1<<20), resource.BinarySI).String()
		}
		if len(ns.Capacity) == 0 {
			ns.Capacity = nil
		}
		if m.Name == a.cfg.Node {
			ns.DesiredCommitReached = a.reachedHere()
		} else if r, ok := reps[m.Name]; ok {
			ns.DesiredCommitReached = r.Reached
		}
		if m.Alive {
			ns.State = "alive"
			delete(a.deadSince, m.Name)
		} else {
			ns.State = "dead"
		}
		files[m.Name] = ns
	}
	for name, ns := range files {
		if !seen[name] && ns.State == "alive" {
			ns.State = "dead"
			files[name] = ns
		}
	}
	var policies []manifest.Node
	if a.inForce != nil {
		policies = a.inForce.set.Nodes
	}
	nodes := SchedulerNodes(files, policies, func(name string) (bool, bool) {
		since, ok := a.deadSince[name]
		if !ok {
			since = now
			a.deadSince[name] = now
		}
		// Within the grace a dead node keeps its replicas, cordoned.
		return now.Sub(since) < a.cfg.NodeGrace.Duration, true
	})
	return nodes, files
}

// SchedulerNodes turns the status branch's nodes and the Node policies of
// the desired commit into the scheduler's view. Nodes a policy marks
// removed (and that are not alive) are dropped from files. notAlive says,
// for a node that is not alive, whether it still counts as alive and
// whether it is then cordoned (the grace period); nil means dead.
func SchedulerNodes(files map[string]status.NodeStatus, policies []manifest.Node, notAlive func(name string) (alive, cordoned bool)) []scheduler.Node {
	var nodes []scheduler.Node
	for _, name := range sortedKeys(files) {
		ns := files[name]
		for _, pol := range policies {
			if pol.Metadata.Name == name && pol.Spec.Removed && ns.State != "alive" {
				ns.State = "removed"
				files[name] = ns
			}
		}
		if ns.State == "removed" {
			delete(files, name)
			continue
		}
		n := scheduler.Node{Name: name, Labels: map[string]string{}, Alive: ns.State == "alive"}
		for k, v := range ns.Labels {
			n.Labels[k] = v
		}
		n.Labels["kubernetes.io/hostname"] = name
		if !n.Alive && notAlive != nil {
			n.Alive, n.Unschedulable = notAlive(name)
			n.Unschedulable = n.Unschedulable && n.Alive
		}
		for _, pol := range policies {
			if pol.Metadata.Name != name {
				continue
			}
			n.Unschedulable = n.Unschedulable || pol.Spec.Unschedulable
			n.Taints = pol.Spec.Taints
			for k, v := range pol.Spec.Labels {
				n.Labels[k] = v
			}
		}
		for _, r := range []string{"cpu", "memory"} {
			if c, ok := ns.Capacity[r]; ok {
				if q, err := resource.ParseQuantity(c); err == nil {
					if n.Allocatable == nil {
						n.Allocatable = map[string]resource.Quantity{}
					}
					n.Allocatable[r] = q
				}
			}
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// graceWake is when the earliest node grace expires (zero: none).
func (a *Agent) graceWake() time.Time {
	var t time.Time
	for _, since := range a.deadSince {
		e := since.Add(a.cfg.NodeGrace.Duration)
		if t.IsZero() || e.Before(t) {
			t = e
		}
	}
	return t
}
