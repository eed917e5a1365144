package agent

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// Followers fetch new commits from their peers, not from the Git host.
// Each node announces in its gossip metadata the newest status and
// desired commits it holds; a follower that sees a commit announced that
// it does not hold fetches it from a random peer that announces it,
// the leader last, and goes to the Git host only when no peer serves it.
// While every announced commit is held, a follower asks nobody: the Git
// host serves the leader alone, whatever the size of the fleet.

// maxPeerTries is how many peers a follower asks for one commit before
// it goes to the Git host.
const maxPeerTries = 3

// peerFailWait is how long a peer that failed to serve is passed over.
const peerFailWait = 30 * time.Second

// announcer publishes the commits this node holds (the gossip cluster).
type announcer interface {
	AnnounceStatus(head string)
	AnnounceDesired(head string)
}

// statusHolder tells whether the local copy of the status branch holds
// a commit.
type statusHolder interface {
	Holds(head string) bool
}

// desiredHolder names the desired commit the local clone serves peers.
type desiredHolder interface {
	Held() string
}

// peerFetching reports whether followers ask peers at all.
func (a *Agent) peerFetching() bool {
	return a.deps.Cluster != nil && a.deps.NodeKey != nil && !a.cfg.NoPeerFetch
}

func (a *Agent) peerAuth() git.SignedAuth {
	return git.SignedAuth{Node: a.cfg.Node, Key: a.deps.NodeKey}
}

// announceStatus announces the status commit this node holds.
func (a *Agent) announceStatus() {
	an, ok := a.deps.Cluster.(announcer)
	if !ok || a.committed == nil || a.committed.Head == "" {
		return
	}
	an.AnnounceStatus(a.committed.Head)
}

// announceDesired announces the desired commit the local clone serves.
func (a *Agent) announceDesired() {
	an, ok := a.deps.Cluster.(announcer)
	h, ok2 := a.deps.Source.(desiredHolder)
	if !ok || !ok2 {
		return
	}
	if c := h.Held(); c != "" {
		an.AnnounceDesired(c)
	}
}

// peerSource is a peer listener to fetch from.
type peerSource struct {
	node string
	url  string
}

// holders lists the peers to fetch a commit from, in the order to try:
// the alive peers (not self, not failed lately) whose metadata passes
// has, at random, then the leader's listener when it is not among them,
// at most maxPeerTries.
func holders(ms []cluster.Member, self string, has func(cluster.NodeMeta) bool, leader peerSource, failed func(url string) bool) []peerSource {
	var out []peerSource
	leaderIn := false
	for _, m := range ms {
		if !m.Alive || m.Name == self || m.Meta.Peer == "" || !has(m.Meta) {
			continue
		}
		p := peerSource{node: m.Name, url: "http://" + m.Meta.Peer}
		if failed(p.url) {
			continue
		}
		if p.url == leader.url {
			leaderIn = true
			continue
		}
		out = append(out, p)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	// The leader goes last: it serves the first followers, and those
	// serve the rest.
	if leader.url != "" && (leaderIn || len(out) == 0) && !failed(leader.url) {
		out = append(out, leader)
	}
	return out[:min(len(out), maxPeerTries)]
}

// peerFailed reports whether url failed to serve within peerFailWait.
func (a *Agent) peerFailed(url string) bool {
	a.peerMu.Lock()
	defer a.peerMu.Unlock()
	t, ok := a.peerFails[url]
	return ok && time.Since(t) < peerFailWait
}

func (a *Agent) notePeer(url string, err error) {
	a.peerMu.Lock()
	defer a.peerMu.Unlock()
	if err != nil {
		a.peerFails[url] = time.Now()
	} else {
		delete(a.peerFails, url)
	}
}

// statusSources lists the peers to read a new status commit from: those
// announcing one this node does not hold (or the one a hint named), and
// that commit. Empty when every announced commit is held here. Main
// loop only.
func (a *Agent) statusSources() ([]peerSource, string) {
	sh, ok := a.deps.Status.(statusHolder)
	if !ok || !a.peerFetching() || a.isLeader() {
		return nil, ""
	}
	held := map[string]bool{}
	holds := func(h string) bool {
		v, ok := held[h]
		if !ok {
			v = sh.Holds(h)
			held[h] = v
		}
		return v
	}
	if a.hinted != "" && holds(a.hinted) {
		a.hinted = ""
	}
	commit := a.hinted
	src := holders(a.members(), a.cfg.Node, func(m cluster.NodeMeta) bool {
		if m.StatusHead == "" || holds(m.StatusHead) {
			return false
		}
		commit = m.StatusHead
		return true
	}, a.leaderSource(), a.peerFailed)
	if len(src) == 0 && a.hinted != "" {
		if l := a.leaderSource(); l.url != "" && !a.peerFailed(l.url) {
			src = []peerSource{l}
		}
	}
	return src, commit
}

// leaderAnnouncesHeld reports whether the committed leader is alive and
// announces a status commit this node holds: then there is nothing new
// to read. Main loop only.
func (a *Agent) leaderAnnouncesHeld() bool {
	sh, ok := a.deps.Status.(statusHolder)
	if !ok || !a.peerFetching() || a.committed == nil {
		return false
	}
	l := a.committed.Cluster.Leader
	for _, m := range a.members() {
		if m.Name == l && l != a.cfg.Node {
			return m.Alive && m.Meta.StatusHead != "" && sh.Holds(m.Meta.StatusHead)
		}
	}
	return false
}

// spread is how long a follower waits, at most and at random, before it
// fetches a commit that peers announce: by the time it looks, more of
// them do.
func (a *Agent) spread(n int) time.Duration {
	d := time.Duration(n) * 20 * time.Millisecond
	return min(d, time.Second, a.cfg.StatusPoll.Duration/2)
}

// firstWave reports whether this node is one of the few followers that
// fetch a commit only the leader holds yet (about the square root of the
// cluster's size, chosen by the commit): the others wait until one of
// those announces it, so the leader serves a few and they serve the rest.
func (a *Agent) firstWave(commit string, n int) bool {
	k := max(2, int(math.Ceil(math.Sqrt(float64(n)))))
	if n <= k {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(commit + "\x00" + a.cfg.Node))
	return int(h.Sum32()%uint32(n)) < k
}

// followStatus reads the status branch as a follower when there is
// something to read: a commit announced by a peer that this node does
// not hold (fetched from that peer after a short random wait; from the
// leader, when it alone holds it, by the first wave at once and by the
// others only if no peer announces it within a few spreads), or, when
// the leader announces nothing, the fallback poll. Main loop only.
func (a *Agent) followStatus(ctx context.Context) {
	now := time.Now()
	src, commit := a.statusSources()
	if len(src) > 0 {
		onlyLeader := src[0].url == a.leaderSource().url
		n := len(a.members())
		spread := a.spread(n)
		switch {
		case a.statusLookAt.IsZero() && onlyLeader && !a.firstWave(commit, n):
			a.statusLookAt, a.lookForPeer = now.Add(3*spread+rand.N(spread+1)), true
		case a.statusLookAt.IsZero(), a.lookForPeer && !onlyLeader:
			a.statusLookAt, a.lookForPeer = now.Add(rand.N(spread+1)), false
		}
		if now.Before(a.statusLookAt) {
			return
		}
		a.statusLookAt, a.lookForPeer = time.Time{}, false
		a.readStatusFrom(ctx, src)
		return
	}
	a.statusLookAt, a.lookForPeer = time.Time{}, false
	if now.Sub(a.lastStatusRead) < a.cfg.StatusPoll.Duration {
		return
	}
	if a.leaderAnnouncesHeld() {
		// The leader's newest commit is here: nothing to ask anyone.
		a.lastStatusRead = now
		return
	}
	a.readStatus(ctx)
}

// readStatusFromPeers reads the status branch from the first of src
// that serves a history containing this node's. False when none did.
func (a *Agent) readStatusFromPeers(ctx context.Context, src []peerSource) (*status.State, bool) {
	pr, ok := a.deps.Status.(peerStatusReader)
	if !ok || !a.peerFetching() || a.isLeader() {
		return nil, false
	}
	for _, p := range src {
		st, err := pr.ReadFromPeer(ctx, p.url+"/peer/v1/git/status", a.peerAuth(), peerFetchTimeout)
		a.deps.Metrics.Fetch("peer", err)
		a.notePeer(p.url, err)
		if err == nil {
			a.log.Debug("status branch read from a peer", "peer", p.node, "head", short(st.Head))
			return st, true
		}
		a.log.Info("status branch not read from a peer", "peer", p.node, "url", p.url, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, false
}

// fetchDesiredFromPeers fetches desired commit from a peer that holds
// it (one that announces it, or the leader, which placed it). False when
// none served it. Intake loop only.
func (a *Agent) fetchDesiredFromPeers(ctx context.Context, commit string) bool {
	pf, ok := a.deps.Source.(peerDesiredFetcher)
	if !ok || !a.peerFetching() || a.leading.Load() {
		return false
	}
	src := holders(a.members(), a.cfg.Node, func(m cluster.NodeMeta) bool { return m.DesiredHead == commit }, a.leaderSource(), a.peerFailed)
	for _, p := range src {
		err := pf.FetchFromPeer(ctx, p.url+"/peer/v1/git/desired", a.peerAuth(), commit, peerFetchTimeout)
		a.deps.Metrics.Fetch("peer", err)
		a.notePeer(p.url, err)
		if err == nil {
			a.log.Debug("desired commit fetched from a peer", "peer", p.node, "commit", short(commit))
			a.announceDesired()
			return true
		}
		a.log.Info("desired commit not fetched from a peer", "peer", p.node, "url", p.url, "commit", short(commit), "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	return false
}
