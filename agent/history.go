package agent

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// historyCommits and historyStatus bound what the dashboard's history
// reads: the newest desired commits, and the status commits it joins
// with them.
const (
	historyCommits = 25
	historyStatus  = 400
)

// HistoryView is /api/v1/history: the newest desired commits joined with
// what the status branch recorded about them, newest first.
type HistoryView struct {
	DesiredCommit string                 `json:"desiredCommit"`
	StatusCommit  string                 `json:"statusCommit"`
	Commits       []status.HistoryCommit `json:"commits"`
	// CommitURL and StatusCommitURL are the web pages of a desired and a
	// status commit on the Git host, with {commit} for the hash; empty
	// when the repository is not on a web host (git://, file://, ssh).
	CommitURL       string `json:"commitURL,omitempty"`
	StatusCommitURL string `json:"statusCommitURL,omitempty"`
	Error           string `json:"error,omitempty"`
}

// historyCache keeps the last view: it changes only with the desired
// commit in force or the status head.
type historyCache struct {
	mu   sync.Mutex
	key  [2]string
	view HistoryView
}

// history reads the view from the local clones, on the caller's
// goroutine: readers of their own, never the loops' repositories.
func (a *Agent) history() HistoryView {
	s := a.Snapshot()
	key := [2]string{s.DesiredCommit, s.StatusCommit}
	a.hist.mu.Lock()
	defer a.hist.mu.Unlock()
	if a.hist.key == key && a.hist.view.Commits != nil {
		return a.hist.view
	}
	v := HistoryView{DesiredCommit: s.DesiredCommit, StatusCommit: s.StatusCommit, Commits: []status.HistoryCommit{},
		CommitURL: commitURL(a.cfg.Repo.Primary()), StatusCommitURL: commitURL(a.cfg.StatusRepo.Primary())}
	var events []status.Event
	if s.StatusCommit != "" {
		r, err := status.OpenReader(filepath.Join(a.cfg.DataDir, "git", "status"))
		if err == nil {
			var log []status.Entry
			if log, err = r.Recent(s.StatusCommit, historyStatus+1); err == nil {
				events = status.Events(log)
				// The oldest commit read has no parent to compare with:
				// its "events" are the whole state, not changes.
				if len(log) > historyStatus {
					first := log[0].Hash
					kept := events[:0]
					for _, ev := range events {
						if ev.StatusCommit != first {
							kept = append(kept, ev)
						}
					}
					events = kept
				}
			}
		}
		if err != nil {
			v.Error = "status branch: " + err.Error()
		}
	}
	var commits []git.CommitInfo
	var lookup func(string) (git.CommitInfo, error)
	if s.DesiredCommit != "" {
		src, err := git.OpenReader(git.Config{Dir: filepath.Join(a.cfg.DataDir, "git", "desired"), Branch: a.cfg.Branch, Ref: a.cfg.Ref})
		if err == nil {
			// From the branch's head as last fetched: commits newer
			// than the one in force (refused, or not yet taken) too.
			head := s.DesiredCommit
			if rev, herr := src.Head(); herr == nil && rev.Commit != "" {
				if ok, _ := src.IsAncestor(s.DesiredCommit, rev.Commit); ok {
					head = rev.Commit
				}
			}
			commits, err = src.Commits(head, historyCommits, a.deps.Trust)
			lookup = func(h string) (git.CommitInfo, error) { return src.Commit(h, a.deps.Trust) }
		}
		if err != nil {
			v.Error = strings.TrimPrefix(v.Error+"; ", "; ") + "desired branch: " + err.Error()
		}
	}
	joined := status.JoinHistory(commits, events, lookup, nil)
	// Commits older than the ones listed that the events still name
	// (placements kept from long ago) are left out: the view is of the
	// newest commits.
	for i := len(joined) - 1; i >= 0; i-- {
		hc := joined[i]
		if !hc.OnBranch && len(commits) > 0 && !hc.Committer.When.IsZero() && hc.Committer.When.Before(commits[0].Committer.When) {
			continue
		}
		v.Commits = append(v.Commits, hc)
	}
	a.hist.key, a.hist.view = key, v
	return v
}

// commitURL is the web page of a commit on the host of an https
// repository URL (GitHub, GitLab, Gitea and Forgejo all serve
// <repo>/commit/<hash>); "" for other schemes. Credentials and the
// .git suffix are dropped.
func commitURL(repo string) string {
	u, err := url.Parse(repo)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
	if u.Path == "" {
		return ""
	}
	return fmt.Sprintf("%s/commit/{commit}", u.String())
}
