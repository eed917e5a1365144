package status

import (
	"fmt"

	"driftless.dev/driftless/sources/git"
)

// Violation is a status commit that breaks the branch's invariants.
type Violation struct {
	Commit string `json:"commit"`
	Reason string `json:"reason"`
}

func (v *Violation) Error() string {
	return fmt.Sprintf("commit %s: %s", short(v.Commit), v.Reason)
}

// AuditReport sums up a branch that holds.
type AuditReport struct {
	Commits int `json:"commits"`
	// Terms maps each term to its leader.
	Terms map[int64]string `json:"terms"`
	// Keys maps each signing key's fingerprint to the commits it signed.
	Keys map[string]int `json:"keys"`
}

// Audit checks a status branch, oldest commit first, against the
// invariants the agents keep: linear history (no merges), a Leader and a
// Term trailer on every commit that agree with its cluster.yaml, terms that
// never decrease, one leader per term, and every commit signed by an SSH
// key the allowed signers trust for the node its Leader trailer names. It
// returns the first violation, or nil.
func Audit(log []Entry, signers *git.AllowedSigners) (*AuditReport, *Violation) {
	rep := &AuditReport{Terms: map[int64]string{}, Keys: map[string]int{}}
	last := int64(-1)
	for i := range log {
		e := &log[i]
		bad := func(format string, args ...any) (*AuditReport, *Violation) {
			return nil, &Violation{Commit: e.Hash, Reason: fmt.Sprintf(format, args...)}
		}
		if len(e.Parents) > 1 {
			return bad("merge commit (%d parents): the status branch must be linear", len(e.Parents))
		}
		if i > 0 && (len(e.Parents) == 0 || e.Parents[0] != log[i-1].Hash) {
			return bad("does not follow %s", short(log[i-1].Hash))
		}
		if e.Leader == "" || e.Term < 0 {
			return bad("no Leader or Term trailer")
		}
		if e.Err != nil {
			return bad("unreadable tree: %v", e.Err)
		}
		if c := e.State.Cluster; c.Leader != e.Leader || c.Term != e.Term {
			return bad("trailers say leader %s term %d, cluster.yaml says leader %s term %d", e.Leader, e.Term, c.Leader, c.Term)
		}
		if e.Term < last {
			return bad("term decreases from %d to %d", last, e.Term)
		}
		if prev, ok := rep.Terms[e.Term]; ok && prev != e.Leader {
			return bad("second leader in term %d: %s after %s", e.Term, e.Leader, prev)
		}
		who, err := e.Signer(git.Trust{Signers: signers}, e.Leader)
		if err != nil {
			return bad("leader %s: %v", e.Leader, err)
		}
		rep.Terms[e.Term] = e.Leader
		rep.Keys[who.Key]++
		last = e.Term
		rep.Commits++
	}
	return rep, nil
}

func short(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}
