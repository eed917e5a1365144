package git

import (
	"fmt"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Person is an author or committer.
type Person struct {
	Name  string    `json:"name"`
	Email string    `json:"email"`
	When  time.Time `json:"when"`
}

// CommitInfo describes one desired commit for people: who wrote it, who
// committed it, who signed it.
type CommitInfo struct {
	Hash      string   `json:"commit"`
	Subject   string   `json:"subject"`
	Parents   []string `json:"parents,omitempty"`
	Author    Person   `json:"author"`
	Committer Person   `json:"committer"`
	// Signer is nil for an unsigned commit.
	Signer *Signer `json:"signer,omitempty"`
	// SignError says why the signature is not trusted (or "" when it is,
	// or the commit is unsigned).
	SignError string `json:"signError,omitempty"`
}

// Commits lists the commits reachable from head, oldest first, at most
// max (the newest ones), with their signers checked against trust.
func (r *Repo) Commits(head string, max int, trust Trust) ([]CommitInfo, error) {
	it, err := r.repo.Log(&gogit.LogOptions{From: plumbing.NewHash(head), Order: gogit.LogOrderCommitterTime})
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", head, err)
	}
	defer it.Close()
	var out []CommitInfo
	for len(out) < max {
		c, err := it.Next()
		if err != nil {
			break
		}
		out = append(out, describe(c, trust))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Commit describes one commit the clone has.
func (r *Repo) Commit(hash string, trust Trust) (CommitInfo, error) {
	c, err := r.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return CommitInfo{}, fmt.Errorf("commit %s: %w", hash, err)
	}
	return describe(c, trust), nil
}

func describe(c *object.Commit, trust Trust) CommitInfo {
	ci := CommitInfo{
		Hash:      c.Hash.String(),
		Author:    Person{c.Author.Name, c.Author.Email, c.Author.When.UTC()},
		Committer: Person{c.Committer.Name, c.Committer.Email, c.Committer.When.UTC()},
	}
	ci.Subject, _, _ = strings.Cut(c.Message, "\n")
	for _, p := range c.ParentHashes {
		ci.Parents = append(ci.Parents, p.String())
	}
	if strings.TrimSpace(c.PGPSignature) != "" {
		s, err := CommitSigner(c, trust, "")
		ci.Signer = &s
		if err != nil {
			ci.SignError = err.Error()
		}
	}
	return ci
}

// OpenReader opens the local clone of cfg.Dir to read commits and the
// followed head, without fetching or repairing it: safe beside the Repo
// that fetches into it.
func OpenReader(cfg Config) (*Repo, error) {
	if cfg.Branch == "" {
		cfg.Branch = DefaultBranch
	}
	repo, err := gogit.PlainOpen(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open clone %s: %w", cfg.Dir, err)
	}
	return &Repo{cfg: cfg, repo: repo}, nil
}
