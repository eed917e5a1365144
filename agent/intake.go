package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources"
	"driftless.dev/driftless/status"
)

// intakeView is what the intake loop publishes for the main loop: the
// desired commit in force, the newest refusal, and the desired commits
// loaded for the placements. Never changed once published.
type intakeView struct {
	inForce   *loaded
	rejection *status.Rejection
	// sets holds the loaded commits the main loop asked for, by id;
	// failed says why one of them could not be loaded (yet).
	sets   map[string]*manifest.Set
	failed map[string]string
	// lastSeen and srcFails tell a new leader whether the desired
	// repository was looked at yet.
	lastSeen string
	srcFails int
}

// inForceCommit is the id of the commit in force, or "".
func (v intakeView) inForceCommit() string {
	if v.inForce == nil {
		return ""
	}
	return v.inForce.rev.Commit
}

// intakeWants is what the main loop asks of the intake loop: a fetch now,
// and the desired commits the committed placements name (replaced whole
// each time, so the intake keeps only those loaded).
type intakeWants struct {
	mu      sync.Mutex
	fetch   bool
	commits map[string]bool
	// base is the cluster's commit in force, as the status branch names
	// it: a follower's intake holds it as its own commit in force.
	base string
	kick chan struct{}
}

func (w *intakeWants) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// wantFetch asks the intake loop to fetch the desired repository now.
func (a *Agent) wantFetch() {
	a.wants.mu.Lock()
	a.wants.fetch = true
	a.wants.mu.Unlock()
	a.wants.signal()
}

// wantCommits tells the intake loop which desired commits to keep loaded,
// and base, the cluster's commit in force.
func (a *Agent) wantCommits(commits map[string]bool, base string) {
	a.wants.mu.Lock()
	same := len(commits) == len(a.wants.commits) && base == a.wants.base
	for c := range commits {
		same = same && a.wants.commits[c]
	}
	a.wants.commits, a.wants.base = commits, base
	a.wants.mu.Unlock()
	if !same {
		a.wants.signal()
	}
}

// intakeLoop owns the desired repository (Source), the bundle inbox and
// the agent's persisted intake state: it fetches (the leader on its poll,
// a push seen by fsnotify, a webhook call, a hint; every node when a
// placement names a commit it lacks), verifies and validates a new head
// whole or not at all, imports bundles, and publishes what is in force.
// Every fetch is bounded by FetchTimeout; whatever it waits for, the main
// loop (leader, status) and the node loop carry on.
func (a *Agent) intakeLoop(ctx context.Context) {
	poll := time.NewTimer(a.nextPoll())
	defer poll.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		fetch := false
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			// Only the leader follows the desired branch closely; a
			// follower fetches it when a placement names a commit it
			// does not have.
			fetch = a.leading.Load()
			a.takeBundles(ctx)
			poll.Reset(a.nextPoll())
		case <-a.deps.SourceChanged:
			fetch = a.leading.Load()
		case <-a.webhook:
			// Whoever the hook reached, the leader fetches: tell it.
			if a.leading.Load() {
				fetch = true
				poll.Reset(a.nextPoll())
			}
			if a.deps.Cluster != nil {
				a.deps.Cluster.Hint(cluster.Hint{Kind: cluster.HintDesired})
			}
		case <-a.deps.InboxChanged:
			a.takeBundles(ctx)
		case <-a.wants.kick:
		case <-retry.C:
		}
		if ctx.Err() != nil {
			return
		}
		if !a.bundleRetry.IsZero() && !time.Now().Before(a.bundleRetry) {
			a.takeBundles(ctx)
		}
		a.intakeWork(ctx, fetch)
		next := time.Hour
		if !a.bundleRetry.IsZero() {
			next = time.Until(a.bundleRetry)
		}
		for _, t := range a.loadRetry {
			next = min(next, time.Until(t))
		}
		retry.Reset(max(next, 50*time.Millisecond))
	}
}

// intakeWork does what the main loop asked (a fetch; the commits named by
// placements), plus a fetch when fetch is set, and publishes the result.
// Intake loop only (and tests, in its stead).
func (a *Agent) intakeWork(ctx context.Context, fetch bool) {
	a.wants.mu.Lock()
	fetch = fetch || a.wants.fetch
	a.wants.fetch = false
	commits, base := a.wants.commits, a.wants.base
	a.wants.mu.Unlock()
	if !a.leading.Load() {
		a.followBase(ctx, base, commits)
	}
	if fetch {
		a.syncDesired(ctx)
	}
	failed := map[string]string{}
	for c := range commits {
		if _, err := a.load(ctx, c, commits); err != nil {
			failed[c] = err.Error()
		}
	}
	a.publishIntake(commits, failed)
}

// followBase makes the cluster's commit in force this follower's own, so
// that, should it lead, a new head is checked against it (fast-forward,
// signatures) and a refused head leaves it in force: a new leader whose
// own intake had nothing in force would have no desired state to place
// from, and a dead node's replicas would never move. Intake loop only.
func (a *Agent) followBase(ctx context.Context, base string, keep map[string]bool) {
	if base == "" || a.inForceCommit() == base {
		return
	}
	set, err := a.load(ctx, base, keep)
	if err != nil {
		return // retried at the next pass (loadRetry spaces the fetches)
	}
	a.inForce = &loaded{rev: sources.Revision{Commit: base}, set: set}
	a.state.InForce = base
	a.savePersisted()
}

// publishIntake publishes the intake's state for the main loop.
func (a *Agent) publishIntake(commits map[string]bool, failed map[string]string) {
	v := intakeView{inForce: a.inForce, rejection: a.rejection, failed: failed, lastSeen: a.state.LastSeen, srcFails: a.srcFails,
		sets: make(map[string]*manifest.Set, len(commits)+1)}
	for c := range commits {
		if s, ok := a.sets[c]; ok {
			v.sets[c] = s
		}
	}
	if a.inForce != nil {
		v.sets[a.inForce.rev.Commit] = a.inForce.set
	}
	a.intakeOut.Put(v)
}

// startIntake takes, before any loop runs, the commit in force from disk,
// so that the node keeps its last state when Git is unreachable, and
// publishes it.
func (a *Agent) startIntake(ctx context.Context) {
	if a.state.InForce != "" && a.deps.Source.Has(a.state.InForce) {
		if set, err := a.load(ctx, a.state.InForce, nil); err == nil {
			a.inForce = &loaded{rev: sources.Revision{Commit: a.state.InForce}, set: set}
		} else {
			a.log.Warn("commit in force no longer loads", "commit", short(a.state.InForce), "err", err)
		}
	}
	a.takeBundles(ctx)
	a.publishIntake(nil, nil)
}

// heldReason is why a placement's commit is not there for the node.
func heldReason(v intakeView, commit string) string {
	if why, ok := v.failed[commit]; ok {
		return why
	}
	return fmt.Sprintf("desired commit %s is being fetched", short(commit))
}
