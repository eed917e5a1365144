package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"driftless.dev/driftless/sources/git"
)

// maxLog bounds the commits read from one status branch.
const maxLog = 200000

// Entry is one commit of the status branch, decoded.
type Entry struct {
	Hash    string
	Parents []string
	// Time is the committer time.
	Time    time.Time
	Summary string
	// Trailers as the message states them; Term is -1 when absent or not
	// a number.
	Leader        string
	Term          int64
	DesiredCommit string
	// State is the branch's tree at this commit.
	State *State
	// Err is set when the tree could not be decoded (State is nil then).
	Err error

	commit *object.Commit
}

// Signer verifies the entry's signature against trust; principal, when not
// empty, must be one the SSH key may sign for.
func (e *Entry) Signer(trust git.Trust, principal string) (git.Signer, error) {
	return git.CommitSigner(e.commit, trust, principal)
}

// Log fetches the status branch into a temporary clone and returns its
// commits, oldest first, following first parents (a merge, which a status
// branch never has, is still listed with all its parents). For commands
// that run without an agent.
func Log(ctx context.Context, url, branch string, auth git.Auth) ([]Entry, error) {
	dir, err := os.MkdirTemp("", "driftless-status-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s, err := Open(ctx, Config{URL: url, Branch: branch, Dir: dir, Auth: auth})
	if err != nil {
		return nil, err
	}
	if err := s.fetch(ctx); err != nil {
		return nil, err
	}
	return s.log()
}

// Log returns the locally known status branch, oldest first.
func (s *Store) log() ([]Entry, error) {
	ref, err := s.repo.Reference(s.localRef(), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, fmt.Errorf("branch %s not found in %s", s.cfg.Branch, s.cfg.URL)
	}
	if err != nil {
		return nil, err
	}
	out, err := s.walk(ref.Hash(), maxLog)
	if err == errTooLong {
		return nil, fmt.Errorf("status branch longer than %d commits", maxLog)
	}
	return out, err
}

var errTooLong = errors.New("status branch longer than the limit")

// walk decodes at most max commits from head down its first parents and
// returns them oldest first; errTooLong (with nothing) when there are
// more and max is maxLog.
func (s *Store) walk(head plumbing.Hash, max int) ([]Entry, error) {
	var out []Entry
	blobs := map[plumbing.Hash][]byte{}
	for h := head; !h.IsZero(); {
		if len(out) >= max {
			if max == maxLog {
				return nil, errTooLong
			}
			break
		}
		c, err := s.repo.CommitObject(h)
		if err != nil {
			return nil, fmt.Errorf("status commit %s: %w", h, err)
		}
		e := Entry{Hash: c.Hash.String(), Time: c.Committer.When, commit: c, Term: -1}
		for _, p := range c.ParentHashes {
			e.Parents = append(e.Parents, p.String())
		}
		e.Summary, _, _ = strings.Cut(c.Message, "\n")
		for k, v := range trailers(c.Message) {
			switch k {
			case "Leader":
				e.Leader = v
			case "Term":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					e.Term = n
				}
			case "Desired-Commit":
				e.DesiredCommit = v
			}
		}
		e.State, e.Err = s.stateAt(c, blobs)
		out = append(out, e)
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Reader reads a status branch's local clone without writing to it: safe
// to use beside the Store that fetches and pushes there (objects are
// immutable; a ref moves by rename). Not safe for concurrent use itself.
type Reader struct{ s *Store }

// OpenReader opens the local clone at dir read-only.
func OpenReader(dir string) (*Reader, error) {
	repo, err := gogit.PlainOpen(dir)
	if err != nil {
		return nil, fmt.Errorf("open status clone %s: %w", dir, err)
	}
	return &Reader{s: &Store{repo: repo}}, nil
}

// Recent returns the n status commits up to head, oldest first.
func (r *Reader) Recent(head string, n int) ([]Entry, error) {
	if n <= 0 || n >= maxLog {
		n = maxLog - 1
	}
	return r.s.walk(plumbing.NewHash(head), n)
}

// stateAt decodes the tree of c; blobs caches file contents by hash, since
// consecutive commits share most files.
func (s *Store) stateAt(c *object.Commit, blobs map[plumbing.Hash][]byte) (*State, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("tree of %s: %w", c.Hash, err)
	}
	files := map[string][]byte{}
	err = tree.Files().ForEach(func(f *object.File) error {
		if b, ok := blobs[f.Hash]; ok {
			files[f.Name] = b
			return nil
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		blobs[f.Hash] = b
		files[f.Name] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	st, err := decodeFiles(files)
	if err != nil {
		return nil, err
	}
	st.Head = c.Hash.String()
	return st, nil
}

// trailers reads the "Key: value" lines of a message's last paragraph.
func trailers(msg string) map[string]string {
	paras := strings.Split(strings.TrimSpace(msg), "\n\n")
	out := map[string]string{}
	if len(paras) < 2 {
		return out
	}
	for _, l := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok || strings.ContainsAny(k, " \t") {
			return map[string]string{}
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
