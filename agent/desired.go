package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/metrics"
	"driftless.dev/driftless/sources"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// syncDesired fetches the desired repository and takes a new head whole or
// not at all.
func (a *Agent) syncDesired(ctx context.Context) {
	start := time.Now()
	if start.Before(a.fetchNotBefore) {
		return // the Git host asked to wait (Retry-After); nextPoll waits too
	}
	defer func() { a.deps.Metrics.Loop(metrics.LoopIntake, time.Since(start)) }()
	rev, err := a.fetchDesired(ctx)
	now := time.Now().UTC()
	remote := rev.Remote
	if remote == "" {
		remote = a.cfg.Repo.Primary()
	}
	a.deps.Metrics.Fetch(remote, err)
	if err != nil {
		a.srcFails++
		a.setSource(func(s *SourceStatus) { s.OK = false; s.LastError = err.Error(); s.LastAttempt = now })
		// Once per kind of failure, not at every poll.
		if err.Error() != a.srcErr {
			a.log.Warn("desired repository unavailable; keeping the commit in force", "err", err, "inForce", short(a.inForceCommit()), "failures", a.srcFails)
			a.srcErr = err.Error()
		}
		// A bundle imported while this node followed may have moved the
		// local branch: take it as any new head.
		if local, herr := a.deps.Source.Head(); herr == nil && local.Commit != a.state.LastSeen {
			a.consider(ctx, local, now, false)
		}
		return
	}
	if a.srcFails > 0 {
		a.log.Info("desired repository reachable again", "remote", rev.Remote, "failures", a.srcFails)
	}
	a.srcErr = ""
	// Say which URL answered when it changes, not at every poll.
	if rev.Remote != "" && rev.Remote != a.lastRemote {
		if rev.Remote != a.cfg.Repo.Primary() {
			a.log.Warn("desired repository fetched from a mirror; the URLs before it failed", "remote", rev.Remote, "primary", a.cfg.Repo.Primary())
		} else if a.lastRemote != "" {
			a.log.Info("desired repository fetched from the first URL again", "remote", rev.Remote)
		}
	}
	if rev.Remote != "" {
		a.lastRemote = rev.Remote
	}
	a.srcFails = 0
	a.setSource(func(s *SourceStatus) {
		s.OK = true
		s.LastError = ""
		s.LastAttempt = now
		s.LastSuccess = now
		s.Head = rev.Commit
		if rev.Remote != "" {
			s.Remote = rev.Remote
		}
	})
	a.consider(ctx, rev, now, false)
}

// consider takes rev as the new head whole or not at all: fast-forward
// rule, signature policy, validation. It returns the reasons it was
// refused (nil when taken, or already seen and not forced).
func (a *Agent) consider(ctx context.Context, rev sources.Revision, now time.Time, force bool) []string {
	if !force && rev.Commit == a.state.LastSeen && (a.inForce != nil || a.state.Rejected == rev.Commit) {
		return nil
	}
	a.state.LastSeen = rev.Commit
	following := a.cfg.Branch
	if a.cfg.Ref != "" {
		following = "ref " + a.cfg.Ref
	}
	// History only moves forward: a head that does not descend from the
	// commit in force (a force push, or a rollback to an older commit) is
	// refused unless allowed. Reverting is a new commit and passes. A
	// change of what the agent follows (--branch, --ref) starts over.
	if a.inForce != nil && !a.cfg.AllowNonFastForward && a.state.Following == following {
		if ok, err := a.deps.Source.IsAncestor(a.inForce.rev.Commit, rev.Commit); err != nil || !ok {
			msg := fmt.Sprintf("commit %s does not descend from the commit in force %s (force push or rollback); refused, previous commit stays in force (revert with a new commit, or start the agent with --allow-non-fast-forward)", short(rev.Commit), short(a.inForce.rev.Commit))
			if err != nil {
				msg += ": " + err.Error()
			}
			a.reject(rev.Commit, now, metrics.RejectNonFastForward, []string{msg})
			return []string{msg}
		}
	}
	if a.cfg.Verify != "" && a.cfg.Verify != git.VerifyOff {
		if err := a.deps.Source.Verify(a.inForceCommit(), rev.Commit, a.cfg.Verify, a.deps.Trust); err != nil {
			a.reject(rev.Commit, now, metrics.RejectSignature, []string{err.Error()})
			return []string{err.Error()}
		}
	}
	a.state.Following = following
	set, err := a.load(ctx, rev.Commit, nil)
	if err != nil {
		var perrs manifest.Errors
		lines := []string{err.Error()}
		reason := metrics.RejectLoad
		if errors.As(err, &perrs) {
			lines, reason = lines[:0], metrics.RejectInvalid
			for _, p := range perrs {
				lines = append(lines, p.String())
			}
		}
		a.reject(rev.Commit, now, reason, lines)
		return lines
	}
	for _, s := range set.Skipped {
		a.log.Info("not handled by driftless", "file", s.File, "line", s.Line, "kind", s.Kind, "name", s.Name, "reason", s.Reason)
	}
	for _, w := range set.Warnings {
		a.log.Warn("manifest warning", "problem", w.String())
	}
	a.inForce = &loaded{rev: rev, set: set}
	a.state.InForce = rev.Commit
	a.state.Rejected = ""
	a.log.Info("desired commit in force", "commit", short(rev.Commit), "workloads", len(set.Workloads), "subject", rev.Subject, "from", rev.Remote)
	a.savePersisted()
	return nil
}

// reject records a refused desired commit: logged, served by the API and
// committed to the status branch by the leader. Containers are untouched.
func (a *Agent) reject(commit string, now time.Time, reason string, lines []string) {
	a.deps.Metrics.Rejection(reason)
	a.rejection = &status.Rejection{Commit: commit, Time: now, Errors: lines}
	a.state.Rejected = commit
	a.log.Error("desired commit rejected; previous commit stays in force",
		"commit", short(commit), "inForce", short(a.inForceCommit()), "errors", len(lines))
	for _, l := range lines {
		a.log.Error("rejection", "commit", short(commit), "problem", l)
	}
	a.savePersisted()
}

func (a *Agent) inForceCommit() string {
	if a.inForce == nil {
		return ""
	}
	return a.inForce.rev.Commit
}

// load reads and validates the manifests of one commit, cached by commit;
// the cache keeps the commit in force, this one and those in keep (the
// commits placements name). Intake loop only.
func (a *Agent) load(ctx context.Context, commit string, keep map[string]bool) (*manifest.Set, error) {
	if s, ok := a.sets[commit]; ok {
		return s, nil
	}
	if !a.deps.Source.Has(commit) {
		// A follower learns of new desired commits from placements.
		if t, ok := a.loadRetry[commit]; ok && time.Now().Before(t) {
			return nil, fmt.Errorf("desired commit %s not fetched yet (next try in %s)", short(commit), time.Until(t).Round(time.Second))
		}
		// The leader that placed it has it: ask it before the Git host.
		if a.fetchDesiredFromPeers(ctx, commit) {
			delete(a.loadRetry, commit)
		} else if _, err := a.fetchDesired(ctx); err != nil {
			a.loadRetry[commit] = time.Now().Add(max(a.cfg.Poll.Duration, time.Until(a.fetchNotBefore)))
			return nil, fmt.Errorf("fetch desired commit %s: %w", short(commit), err)
		}
		delete(a.loadRetry, commit)
		if !a.deps.Source.Has(commit) {
			a.loadRetry[commit] = time.Now().Add(a.cfg.Poll.Duration)
			return nil, fmt.Errorf("desired commit %s: not on the desired branch's remote", short(commit))
		}
	}
	files, err := a.deps.Source.Files(ctx, commit, a.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", short(commit), err)
	}
	set, err := manifest.LoadWith(files, manifest.LoadOptions{RequireSealedSecrets: a.cfg.RequireSealedSecrets})
	if err != nil {
		return nil, err
	}
	// Keep the cache small: the commit in force, the one being loaded and
	// those placements still name.
	for c := range a.sets {
		if c != commit && c != a.inForceCommit() && !keep[c] {
			delete(a.sets, c)
		}
	}
	a.sets[commit] = set
	return set, nil
}

// peerDesiredFetcher fetches the desired branch from a peer.
type peerDesiredFetcher interface {
	FetchFromPeer(ctx context.Context, url string, auth transport.AuthMethod, commit string, timeout time.Duration) error
}

// fetchDesired fetches the desired repository within FetchTimeout. A Git
// host that answers 429 or 503 with a Retry-After is not asked again
// before that time (at most sources.MaxRetryAfter). Intake loop only.
func (a *Agent) fetchDesired(ctx context.Context) (sources.Revision, error) {
	if until := a.fetchNotBefore; time.Now().Before(until) {
		return sources.Revision{}, fmt.Errorf("%w: the Git host asked to wait until %s", sources.ErrUnreachable, until.UTC().Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.FetchTimeout.Duration)
	defer cancel()
	rev, err := a.deps.Source.Sync(ctx)
	if err == nil {
		a.announceDesired()
	}
	if d, ok := sources.RetryAfter(err); ok {
		a.fetchNotBefore = time.Now().Add(d)
		a.log.Warn("the Git host asks to wait before the next fetch", "wait", d, "err", err)
	}
	return rev, err
}
