package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/leader"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/metrics"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/sources"
	"driftless.dev/driftless/status"
)

// readStatus reads the status branch as a follower: from the leader's
// peer listener first, else from the Git host.
func (a *Agent) readStatus(ctx context.Context) {
	var src []peerSource
	if l := a.leaderSource(); l.url != "" && !a.peerFailed(l.url) {
		src = []peerSource{l}
	}
	a.readStatusFrom(ctx, src)
}

// readStatusFrom reads the status branch from the first peer of src that
// serves it, else from the Git host.
func (a *Agent) readStatusFrom(ctx context.Context, src []peerSource) {
	a.lastStatusRead = time.Now()
	rctx, cancel := context.WithTimeout(ctx, a.cfg.StatusTimeout.Duration)
	defer cancel()
	if len(src) > 0 {
		if st, ok := a.readStatusFromPeers(rctx, src); ok {
			a.setStatusError(nil)
			a.committed = st
			a.noteLeaderPeer()
			a.announceStatus()
			return
		}
		// The next read waits up to one more poll interval, at random:
		// followers whose leader is gone do not all reach the Git host
		// at once.
		if p := a.cfg.StatusPoll.Duration; p > 0 {
			a.lastStatusRead = a.lastStatusRead.Add(rand.N(p))
		}
	}
	st, err := a.deps.Status.Read(rctx)
	if a.holdStatusFor(err) {
		// The next read waits for the Git host's Retry-After.
		if t := a.statusNotBefore.Add(-a.cfg.StatusPoll.Duration); t.After(a.lastStatusRead) {
			a.lastStatusRead = t
		}
	}
	if errors.Is(err, status.ErrNewerSchema) {
		a.schemaStop = err
		a.log.Error("refusing to act on the status branch", "err", err)
		return
	}
	a.setStatusError(err)
	if err != nil {
		a.log.Warn("status branch unavailable; using the local copy", "err", err)
	}
	if st != nil {
		a.committed = st
	}
	a.noteLeaderPeer()
	a.announceStatus()
}

// holdStatusFor records the wait a Git host's 429 or 503 in err asks for
// before the status branch is read or written there again; false when
// err asks none. Main loop only.
func (a *Agent) holdStatusFor(err error) bool {
	d, ok := sources.RetryAfter(err)
	if !ok {
		return false
	}
	a.statusNotBefore = time.Now().Add(d)
	a.log.Warn("the status branch's Git host asks to wait", "wait", d, "err", err)
	return true
}

// peerStatusReader reads the status branch from a peer.
type peerStatusReader interface {
	ReadFromPeer(ctx context.Context, url string, auth transport.AuthMethod, timeout time.Duration) (*status.State, error)
}

// peerFetchTimeout bounds a fetch from a peer: a peer that does not
// answer soon is passed over for the next, or the Git host.
const peerFetchTimeout = 5 * time.Second

// noteLeaderPeer records where the leader's peer listener is, from the
// status branch just read.
func (a *Agent) noteLeaderPeer() {
	var p peerSource
	if st := a.committed; st != nil && a.deps.NodeKey != nil && !a.cfg.NoPeerFetch {
		if l := st.Cluster.Leader; l != "" && l != a.cfg.Node {
			if addr := st.Nodes[l].PeerAddress; addr != "" {
				p = peerSource{node: l, url: "http://" + addr}
			}
		}
	}
	a.leaderPeer.Store(&p)
}

// leaderSource is the leader's peer listener as the status branch names
// it; zero when leading, when there is none, or when gossip sees the
// leader dead (a dead leader would cost a peer timeout). Any loop.
func (a *Agent) leaderSource() peerSource {
	p := a.leaderPeer.Load()
	if p == nil || p.url == "" || !aliveIn(a.members(), p.node) {
		return peerSource{}
	}
	return *p
}

// decision is the leader's choice of one pass: leader.Next of the branch
// as it was read (base is its head), reused by the status write unless
// the branch moved meanwhile.
type decision struct {
	base    string
	out     leader.Output
	changed bool
}

// leaderInput gathers what leader.Next decides from, with cur as the
// branch: the commit in force, the gossip view, every node's report (this
// node's own from the node loop), the grace bookkeeping and the clocks.
func (a *Agent) leaderInput(cur *status.State) leader.Input {
	in := leader.Input{Node: a.cfg.Node, Current: cur, DeadSince: a.deadSince,
		NodeGrace: a.cfg.NodeGrace.Duration, Now: time.Now(), JobNow: a.now()}
	if a.view.rejection != a.rejDone {
		in.Rejection = a.view.rejection
	}
	in.Policy, _ = scheduler.ParsePolicy(a.cfg.SchedulerPolicy) // checked by Config.Validate
	in.Services, _ = a.cfg.ServiceConfig()                      // checked by Config.Validate
	in.PodNetwork, _ = a.cfg.PodNetworkConfig()                 // checked by Config.Validate
	if f := a.view.inForce; f != nil {
		in.Set, in.DesiredCommit = f.set, f.rev.Commit
	}
	for _, m := range a.members() {
		in.Members = append(in.Members, leader.Member{Name: m.Name, Alive: m.Alive, Labels: m.Meta.Labels, Address: m.Meta.NodeIP,
			CPUMilli: m.Meta.CPUMilli, MemoryBytes: m.Meta.MemoryBytes, SigningKey: m.Meta.SigningKey, VolumesBytes: m.Meta.VolumesBytes, Arch: m.Meta.Arch, Peer: m.Meta.Peer})
	}
	in.Reports = map[string]leader.Report{}
	for n, r := range a.reports() {
		if n != a.cfg.Node {
			in.Reports[n] = leader.Report{Replicas: r.Replicas, Reached: r.Reached}
		}
	}
	obs := a.observedHere()
	own := leader.Report{Replicas: make(map[string]manifest.ReplicaStatus, len(obs)), Reached: a.reachedHere()}
	for k, o := range obs {
		own.Replicas[leader.ReportKey(k.Workload, k.Index)] = o
	}
	in.Reports[a.cfg.Node] = own
	return in
}

// decide runs leader.Next once on the committed branch and keeps what it
// decided: the next status, the grace bookkeeping, when time alone
// changes the answer.
func (a *Agent) decide() {
	cur := a.committed
	if cur == nil {
		cur = (*status.State)(nil).Clone()
	}
	start := time.Now()
	out := a.next(a.leaderInput(cur))
	a.deps.Metrics.SchedulerPass(time.Since(start))
	a.take(out)
	a.decision = &decision{base: cur.Head, out: out, changed: a.committed == nil || !status.Equal(a.committed, out.Next)}
}

// take keeps the bookkeeping of one leader.Next output.
func (a *Agent) take(out leader.Output) {
	a.deadSince = out.DeadSince
	a.jobWake = out.JobWake
	a.graceWake = out.GraceWake
}

// needsStatusWrite reports whether this pass's decision differs from the
// branch; heartbeats never count.
func (a *Agent) needsStatusWrite() bool {
	return a.isLeader() && a.decision != nil && a.decision.changed
}

func (a *Agent) writeStatus(ctx context.Context) {
	var msg *status.Message
	var readTerm int64
	lost := false
	if a.committed != nil {
		readTerm = a.committed.Cluster.Term
	}
	uctx, cancel := context.WithTimeout(ctx, a.cfg.StatusTimeout.Duration)
	defer cancel()
	st, changed, err := a.deps.Status.Update(uctx, func(cur *status.State) (*status.State, *status.Message, error) {
		// Another node claimed a term since this one last read the
		// branch (its compare-and-swap won): follow it, never outbid it.
		if cur.Cluster.Leader != a.cfg.Node && cur.Cluster.Term > readTerm {
			lost = true
			return nil, nil, nil
		}
		// The pass's decision stands while the branch is where it was
		// read; a branch that moved (a CAS retry) is decided anew.
		var out leader.Output
		if d := a.decision; d != nil && d.base == cur.Head {
			out = d.out
		} else {
			out = a.next(a.leaderInput(cur))
			a.take(out)
		}
		msg = out.Message
		return out.Next, out.Message, nil
	})
	a.lastWrite = time.Now()
	a.holdStatusFor(err)
	if errors.Is(err, status.ErrNewerSchema) {
		a.schemaStop = err
		a.log.Error("refusing to act on the status branch", "err", err)
		return
	}
	a.setStatusError(err)
	switch {
	case err == nil:
		a.deps.Metrics.Push(metrics.PushOK)
	case errors.Is(err, status.ErrConflict):
		a.deps.Metrics.Push(metrics.PushConflict)
	default:
		a.deps.Metrics.Push(metrics.PushError)
	}
	if err != nil {
		a.log.Warn("status commit failed; will retry", "err", err)
		return
	}
	a.committed = st
	a.announceStatus()
	if lost {
		a.log.Info("another node leads; following it", "leader", st.Cluster.Leader, "term", st.Cluster.Term)
		return
	}
	if r := a.view.rejection; r != nil && st.Cluster.LastRejection != nil && st.Cluster.LastRejection.Commit == r.Commit {
		a.rejDone = r
	}
	if changed && msg != nil {
		a.deps.Metrics.StatusCommit()
		a.log.Info("status committed", "commit", short(st.Head), "summary", msg.Summary, "term", st.Cluster.Term)
		if a.deps.Cluster != nil {
			a.deps.Cluster.Hint(cluster.Hint{Kind: cluster.HintStatus, Commit: st.Head})
		}
	}
}

func sortedNodes(m map[string]status.NodeStatus) []status.NodeStatus {
	out := make([]status.NodeStatus, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
