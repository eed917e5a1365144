package status

import (
	"driftless.dev/driftless/sources/git"
)

// HistoryCommit is one desired commit and what the cluster did with it.
type HistoryCommit struct {
	git.CommitInfo
	// OnBranch is false for a commit the status branch names that the
	// desired branch does not reach (a force push that was refused) or
	// that is older than the commits listed.
	OnBranch bool    `json:"onBranch"`
	Events   []Event `json:"events"`
}

// JoinHistory joins desired commits (oldest first, all on the branch)
// with the events of the status branch: each event goes to the commit it
// is about; a commit the events name that is not listed is described by
// lookup and put where it happened in time. keep, when set, filters the
// events.
func JoinHistory(commits []git.CommitInfo, events []Event, lookup func(hash string) (git.CommitInfo, error), keep func(Event) bool) []HistoryCommit {
	out := make([]HistoryCommit, 0, len(commits))
	for _, c := range commits {
		out = append(out, HistoryCommit{CommitInfo: c, OnBranch: true})
	}
	byHash := make(map[string]int, len(out))
	for i := range out {
		byHash[out[i].Hash] = i
	}
	var extra []*HistoryCommit
	extraBy := map[string]*HistoryCommit{}
	for _, ev := range events {
		if ev.DesiredCommit == "" || (keep != nil && !keep(ev)) {
			continue
		}
		if i, ok := byHash[ev.DesiredCommit]; ok {
			out[i].Events = append(out[i].Events, ev)
			continue
		}
		hc := extraBy[ev.DesiredCommit]
		if hc == nil {
			ci := git.CommitInfo{Hash: ev.DesiredCommit}
			if lookup != nil {
				if c, err := lookup(ev.DesiredCommit); err == nil {
					ci = c
				}
			}
			hc = &HistoryCommit{CommitInfo: ci}
			extraBy[ev.DesiredCommit] = hc
			extra = append(extra, hc)
		}
		hc.Events = append(hc.Events, ev)
	}
	// A commit the branch does not reach goes where it happened in time:
	// its own committer time, or its first event.
	for _, hc := range extra {
		at := hc.Committer.When
		if at.IsZero() && len(hc.Events) > 0 {
			at = hc.Events[0].Time
		}
		pos := len(out)
		for k, c := range out {
			if c.OnBranch && c.Committer.When.After(at) {
				pos = k
				break
			}
		}
		out = append(out[:pos], append([]HistoryCommit{*hc}, out[pos:]...)...)
	}
	return out
}
