package agent

import (
	"context"
	"path/filepath"
	"strings"
	"time"
)

// takeBundles imports the complete bundles of the inbox, oldest first.
// Every node imports the objects (a follower then has the commits the
// placements will name); the leader also takes the bundle's head as any
// new head: fast-forward rule, signature policy, validation. A bundle
// goes to done/ when imported (and, on the leader, taken or already in
// force), to rejected/ with the reason otherwise.
func (a *Agent) takeBundles(ctx context.Context) {
	if a.deps.Inbox == nil {
		return
	}
	a.bundleRetry = time.Time{}
	ready, waiting, err := a.deps.Inbox.Pending()
	if err != nil {
		a.log.Warn("bundle inbox unreadable", "err", err)
		return
	}
	if waiting {
		// Written in place rather than renamed in: look again once it
		// has settled.
		a.bundleRetry = time.Now().Add(600 * time.Millisecond)
	}
	for _, path := range ready {
		if ctx.Err() != nil {
			return
		}
		name := filepath.Base(path)
		ictx, cancel := context.WithTimeout(ctx, a.cfg.BundleTimeout.Duration)
		rev, err := a.deps.Source.ImportBundle(ictx, path)
		cancel()
		if err != nil {
			a.refuseBundle(path, err.Error())
			continue
		}
		if !a.leading.Load() {
			// The leader decides on heads; keep the branch moving only
			// forward so that this node, should it lead, starts from it.
			if cur, herr := a.deps.Source.Head(); herr != nil {
				_ = a.deps.Source.AdoptHead(rev.Commit)
			} else if ok, _ := a.deps.Source.IsAncestor(cur.Commit, rev.Commit); ok {
				_ = a.deps.Source.AdoptHead(rev.Commit)
			}
			a.log.Info("bundle imported; the leader takes its head", "bundle", name, "commit", short(rev.Commit))
			a.finishBundle(path)
			continue
		}
		if lines := a.consider(ctx, rev, time.Now().UTC(), true); lines != nil {
			a.refuseBundle(path, "commit "+rev.Commit+" refused:\n"+strings.Join(lines, "\n"))
			continue
		}
		if err := a.deps.Source.AdoptHead(rev.Commit); err != nil {
			a.log.Warn("bundle head taken but the local branch did not move", "bundle", name, "err", err)
		}
		a.setSource(func(s *SourceStatus) { s.Head = rev.Commit; s.Remote = rev.Remote })
		a.log.Info("bundle applied", "bundle", name, "commit", short(rev.Commit), "subject", rev.Subject)
		a.finishBundle(path)
	}
}

func (a *Agent) refuseBundle(path, reason string) {
	a.log.Error("bundle rejected", "bundle", filepath.Base(path), "reason", reason)
	if err := a.deps.Inbox.Reject(path, reason); err != nil {
		a.log.Error("cannot move the rejected bundle", "bundle", filepath.Base(path), "err", err)
	}
}

func (a *Agent) finishBundle(path string) {
	if err := a.deps.Inbox.Done(path); err != nil {
		a.log.Error("cannot move the imported bundle", "bundle", filepath.Base(path), "err", err)
	}
}
