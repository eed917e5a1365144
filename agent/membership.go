package agent

import (
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
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

// members returns the gossip view, or this node alone when standalone.
func (a *Agent) members() []cluster.Member {
	if a.deps.Cluster == nil {
		return []cluster.Member{{Name: a.cfg.Node, Alive: true, Meta: a.meta()}}
	}
	return a.deps.Cluster.Members()
}

// meta is this node's published inventory.
func (a *Agent) meta() cluster.NodeMeta {
	m := cluster.NodeMeta{Labels: a.cfg.Labels, Arch: runtime.GOARCH, Peer: a.peerAddr(), CPUMilli: int64(runtime.NumCPU()) * 1000, MemoryBytes: reconcile.HostMemory(), Version: a.cfg.Version, API: a.cfg.Listen,
		NodeIP: a.nodeIP().String()}
	if a.deps.NodeKey != nil {
		m.SigningKey = status.PublicKeyLine(a.deps.NodeKey.PublicKey())
	}
	if q, err := resource.ParseQuantity(a.cfg.Capacity["cpu"]); err == nil {
		m.CPUMilli = q.MilliValue()
	}
	m.VolumesBytes = fsSize(a.cfg.VolumesDir)
	if q, err := resource.ParseQuantity(a.cfg.Capacity["volumes"]); err == nil {
		m.VolumesBytes = q.Value()
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

// reportTargets points this node's report at the nodes that decide from
// it: the committed leader and the node that would succeed it (the
// lowest alive name among the others), instead of every member, so
// that a report costs the cluster two messages, not one per node. With
// no leader yet, reports go to every member.
func (a *Agent) reportTargets() {
	rt, ok := a.deps.Cluster.(interface{ ReportTo(names ...string) })
	if !ok {
		return
	}
	l := ""
	if a.committed != nil {
		l = a.committed.Cluster.Leader
	}
	if l == "" {
		rt.ReportTo()
		return
	}
	var others []cluster.Member
	for _, m := range a.members() {
		if m.Name != l {
			others = append(others, m)
		}
	}
	rt.ReportTo(l, cluster.Candidate(others))
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

// fsSize is the size of the file system holding dir (or its nearest
// existing parent); 0 when unknown.
func fsSize(dir string) int64 {
	for d := dir; d != ""; d = filepath.Dir(d) {
		var st unix.Statfs_t
		if err := unix.Statfs(d, &st); err == nil {
			return int64(st.Blocks) * int64(st.Bsize)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return 0
}
