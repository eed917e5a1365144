package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/sources"
	"driftless.dev/driftless/sources/git"
)

// Config says where the status branch lives.
type Config struct {
	URL string
	// Mirrors are more repositories holding the same status branch
	// (a site-local server and a central one). Every read fetches from
	// each that answers and follows the history that contains the
	// others; every write goes to each, fast-forward only. Two that have
	// forked are never forced: Forked says so.
	Mirrors []string
	// Branch defaults to driftless/status.
	Branch string
	// Dir is the local bare clone.
	Dir         string
	Auth        git.Auth
	AuthorName  string
	AuthorEmail string
	// Signer, when set, signs every status commit (an SSH signature in
	// git's format, namespace "git").
	Signer ssh.Signer
}

// Store reads and writes one status branch. Not safe for concurrent use;
// several Stores (processes) on one branch are safe: pushes are
// compare-and-swap.
type Store struct {
	cfg  Config
	repo *gogit.Repository
	auth git.Access
	// With mirrors: every URL (the first is cfg.URL), how to reach it,
	// the head each had at the last fetch (zero: none or unreachable),
	// and why they disagree ("" when they do not).
	urls   []string
	access []git.Access
	heads  []plumbing.Hash
	forked string
	// pushed is the last commit this store pushed: while the local copy
	// is still at it, an update builds on it without fetching first (the
	// push is a compare-and-swap; a refused one fetches and tries again).
	pushed plumbing.Hash
	// decoded is each file of the last tree read, in its JSON form, by
	// blob hash.
	decoded map[plumbing.Hash][]byte
}

// Open opens (or creates) the local clone. It needs no network.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Branch == "" {
		cfg.Branch = DefaultBranch
	}
	if cfg.AuthorName == "" {
		cfg.AuthorName = "driftless"
	}
	if cfg.AuthorEmail == "" {
		cfg.AuthorEmail = "driftless@driftless.invalid"
	}
	auth, err := cfg.Auth.Access(cfg.URL)
	if err != nil {
		return nil, err
	}
	repo, err := git.OpenBare(cfg.Dir, cfg.URL)
	if err != nil {
		return nil, err
	}
	st := &Store{cfg: cfg, repo: repo, auth: auth, urls: []string{cfg.URL}, access: []git.Access{auth}}
	for _, u := range cfg.Mirrors {
		acc, err := cfg.Auth.Access(u)
		if err != nil {
			return nil, fmt.Errorf("status mirror %s: %w", git.RedactURL(u), err)
		}
		st.urls, st.access = append(st.urls, u), append(st.access, acc)
	}
	st.heads = make([]plumbing.Hash, len(st.urls))
	return st, nil
}

// Forked says why the status mirrors disagree: two of them hold
// histories neither of which contains the other. "" when they agree (or
// there is one repository).
func (s *Store) Forked() string { return s.forked }

func (s *Store) mirrorRef(i int) plumbing.ReferenceName {
	return plumbing.ReferenceName(fmt.Sprintf("refs/driftless/status-mirrors/%d/%s", i, s.cfg.Branch))
}

func (s *Store) localRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", s.cfg.Branch)
}

func (s *Store) remoteRef() plumbing.ReferenceName {
	return plumbing.NewBranchReferenceName(s.cfg.Branch)
}

// fetch updates the local copy; a missing branch is not an error.
func (s *Store) fetch(ctx context.Context) error {
	if len(s.urls) > 1 {
		return s.fetchMirrors(ctx)
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", s.remoteRef(), s.localRef()))
	err := git.Fetch(ctx, s.repo, s.cfg.URL, s.auth, []config.RefSpec{spec})
	if errors.Is(err, sources.ErrRefNotFound) {
		// The branch does not exist (yet, or any more): forget our copy
		// so that a first commit starts a new root.
		_ = s.repo.Storer.RemoveReference(s.localRef())
		return nil
	}
	return err
}

// Read fetches and decodes the branch. When the remote is unreachable it
// returns the last locally known state together with the error.
func (s *Store) Read(ctx context.Context) (*State, error) {
	ferr := s.fetch(ctx)
	st, err := s.local()
	if err != nil {
		return nil, err
	}
	return st, ferr
}

// local decodes the locally known head of the branch.
func (s *Store) local() (*State, error) {
	ref, err := s.repo.Reference(s.localRef(), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return (*State)(nil).Clone(), nil
	}
	if err != nil {
		return nil, err
	}
	c, err := s.repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("status commit %s: %w", ref.Hash(), err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	// A status commit changes few files: only those are read and
	// converted from YAML (the costly part); the rest come from the JSON
	// kept by blob hash from the last read.
	files := map[string][]byte{}
	keep := map[plumbing.Hash][]byte{}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read status tree: %w", err)
		}
		if !e.Mode.IsFile() {
			continue
		}
		j, ok := s.decoded[e.Hash]
		if !ok {
			blob, err := s.repo.BlobObject(e.Hash)
			if err != nil {
				return nil, fmt.Errorf("read status tree: %s: %w", name, err)
			}
			r, err := blob.Reader()
			if err != nil {
				return nil, err
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				return nil, fmt.Errorf("read status tree: %s: %w", name, err)
			}
			if j, err = yaml.YAMLToJSON(b); err != nil {
				return nil, fmt.Errorf("status file %s: %w", name, err)
			}
		}
		keep[e.Hash] = j
		files[name] = j
	}
	s.decoded = keep
	st, err := decodeJSONFiles(files)
	if err != nil {
		return nil, err
	}
	st.Head = c.Hash.String()
	return st, nil
}

// Holds reports whether status commit head is in the local copy (read
// from the Git host or a peer, or written here).
func (s *Store) Holds(head string) bool {
	h := plumbing.NewHash(head)
	if h.IsZero() {
		return false
	}
	return s.repo.Storer.HasEncodedObject(h) == nil
}

// localAt reports whether the local copy of the branch is at h.
func (s *Store) localAt(h plumbing.Hash) bool {
	r, err := s.repo.Reference(s.localRef(), true)
	return err == nil && r.Hash() == h
}

// Mutate computes the next state from the current one (a private copy).
// Returning a nil state means no change.
type Mutate func(cur *State) (*State, *Message, error)

// Update applies mutate to the freshest state and commits the result with
// a compare-and-swap push, retrying from a new fetch when another writer
// got there first. It makes no commit when the tree would not change.
func (s *Store) Update(ctx context.Context, mutate Mutate) (*State, bool, error) {
	const tries = 16
	var last error
	for i := 0; i < tries; i++ {
		if i > 0 || s.pushed.IsZero() || !s.localAt(s.pushed) {
			if err := s.fetch(ctx); err != nil {
				return nil, false, err
			}
		}
		cur, err := s.local()
		if err != nil {
			return nil, false, err
		}
		next, msg, err := mutate(cur.Clone())
		if err != nil {
			return nil, false, err
		}
		if next == nil || Equal(cur, next) {
			return cur, false, nil
		}
		if msg == nil {
			msg = &Message{Summary: "update status", Leader: next.Cluster.Leader, Term: next.Cluster.Term, DesiredCommit: next.Cluster.DesiredCommit}
		}
		hash, err := s.commit(cur, next, *msg)
		if err != nil {
			return nil, false, err
		}
		err = s.push(ctx, cur.Head, hash)
		if errors.Is(err, ErrConflict) {
			last = err
			select {
			case <-ctx.Done():
				return nil, false, ctx.Err()
			case <-time.After(time.Duration(rand.IntN(20*(i+1))+5) * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if err := s.repo.Storer.SetReference(plumbing.NewHashReference(s.localRef(), hash)); err != nil {
			return nil, false, err
		}
		s.pushed = hash
		next.Head = hash.String()
		return next, true, nil
	}
	return nil, false, fmt.Errorf("status update after %d tries: %w", tries, last)
}

// commit writes blobs, trees and a commit object; no work tree.
func (s *Store) commit(cur, next *State, msg Message) (plumbing.Hash, error) {
	files, err := next.files()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	root, err := s.writeTree(files)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	sig := object.Signature{Name: s.cfg.AuthorName, Email: s.cfg.AuthorEmail, When: time.Now().UTC()}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg.String(), TreeHash: root}
	if cur.Head != "" {
		c.ParentHashes = []plumbing.Hash{plumbing.NewHash(cur.Head)}
	}
	if s.cfg.Signer != nil {
		if err := signCommit(c, s.cfg.Signer); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	obj := s.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.repo.Storer.SetEncodedObject(obj)
}

// writeTree stores files (slash paths) as nested tree objects and returns
// the root tree's hash.
func (s *Store) writeTree(files map[string][]byte) (plumbing.Hash, error) {
	var build func(prefix string) (plumbing.Hash, error)
	build = func(prefix string) (plumbing.Hash, error) {
		var entries []object.TreeEntry
		subdirs := map[string]bool{}
		for p, content := range files {
			if !strings.HasPrefix(p, prefix) {
				continue
			}
			rest := strings.TrimPrefix(p, prefix)
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				subdirs[rest[:i]] = true
				continue
			}
			obj := s.repo.Storer.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, err := obj.Writer()
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if _, err := w.Write(content); err != nil {
				return plumbing.ZeroHash, err
			}
			_ = w.Close()
			h, err := s.repo.Storer.SetEncodedObject(obj)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries = append(entries, object.TreeEntry{Name: rest, Mode: filemode.Regular, Hash: h})
		}
		for d := range subdirs {
			h, err := build(prefix + d + "/")
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries = append(entries, object.TreeEntry{Name: d, Mode: filemode.Dir, Hash: h})
		}
		// Git orders tree entries by name, directories as if suffixed "/".
		sort.Slice(entries, func(i, j int) bool { return treeKey(entries[i]) < treeKey(entries[j]) })
		t := &object.Tree{Entries: entries}
		obj := s.repo.Storer.NewEncodedObject()
		if err := t.Encode(obj); err != nil {
			return plumbing.ZeroHash, err
		}
		return s.repo.Storer.SetEncodedObject(obj)
	}
	return build("")
}

func treeKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// push sends hash to the branch only if the remote still has old (or no
// branch, when old is empty). Rejections become ErrConflict.
func (s *Store) push(ctx context.Context, old string, hash plumbing.Hash) error {
	if len(s.urls) > 1 {
		return s.pushMirrors(ctx, hash)
	}
	spec := config.RefSpec(fmt.Sprintf("%s:%s", hash, s.remoteRef()))
	opts := s.auth.PushOptions("", []config.RefSpec{spec})
	if old != "" {
		opts.RequireRemoteRefs = []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", old, s.remoteRef()))}
	}
	err := s.repo.PushContext(ctx, opts)
	switch {
	case err == nil, errors.Is(err, gogit.NoErrAlreadyUpToDate):
		return nil
	case isRejected(err):
		return fmt.Errorf("push %s: %w: %v", s.cfg.Branch, ErrConflict, git.RedactError(err, s.cfg.URL))
	default:
		if t := git.Throttle(err, time.Now()); t != nil {
			return fmt.Errorf("push %s: %w: %w", s.cfg.Branch, sources.ErrUnreachable, t)
		}
		return fmt.Errorf("push %s: %w: %v", s.cfg.Branch, sources.ErrUnreachable, git.RedactError(err, s.cfg.URL))
	}
}

// isRejected classifies go-git's and git-receive-pack's plain-string
// rejections of a non-fast-forward or stale update.
func isRejected(err error) bool {
	s := err.Error()
	for _, m := range []string{"non-fast-forward", "failed to update ref", "remote ref", "fetch first", "stale info", "rejected"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// ReadState reads a status branch from a repository into a temporary
// clone: for commands that run without an agent.
func ReadState(ctx context.Context, url, branch string, auth git.Auth) (*State, error) {
	dir, err := os.MkdirTemp("", "driftless-status-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := Open(ctx, Config{URL: url, Branch: branch, Dir: dir, Auth: auth})
	if err != nil {
		return nil, err
	}
	state, err := st.Read(ctx)
	if err != nil {
		return nil, err
	}
	if state.Head == "" {
		return nil, fmt.Errorf("branch %s not found in %s", branch, url)
	}
	return state, nil
}

// fetchMirrors fetches the branch from every mirror that answers and
// moves the local copy to the history that contains all the others
// (the longest, since the branch only grows). When two have forked, it
// keeps following the one that contains the local copy (else the first
// URL's) and records the fork; it never rewrites either. An error only
// when no mirror answers.
func (s *Store) fetchMirrors(ctx context.Context) error {
	var errs []error
	reached := 0
	for i, u := range s.urls {
		ref := s.mirrorRef(i)
		spec := config.RefSpec(fmt.Sprintf("+%s:%s", s.remoteRef(), ref))
		mctx, cancel := mirrorShare(ctx, len(s.urls)-i)
		err := git.Fetch(mctx, s.repo, u, s.access[i], []config.RefSpec{spec})
		cancel()
		s.heads[i] = plumbing.ZeroHash
		switch {
		case errors.Is(err, sources.ErrRefNotFound):
			reached++
			_ = s.repo.Storer.RemoveReference(ref)
		case err != nil:
			errs = append(errs, err)
		default:
			reached++
			if r, rerr := s.repo.Reference(ref, true); rerr == nil {
				s.heads[i] = r.Hash()
			}
		}
	}
	if reached == 0 {
		return errors.Join(errs...)
	}
	var local plumbing.Hash
	if r, err := s.repo.Reference(s.localRef(), true); err == nil {
		local = r.Hash()
	}
	best, forked := s.choose(local)
	s.forked = forked
	if best.IsZero() {
		if local.IsZero() {
			return nil
		}
		// No mirror has the branch: as with one repository, a first
		// commit starts a new root.
		return s.repo.Storer.RemoveReference(s.localRef())
	}
	return s.repo.Storer.SetReference(plumbing.NewHashReference(s.localRef(), best))
}

// mirrorShare bounds one mirror's call to its share of what is left of
// ctx's deadline (left mirrors still to call, this one included), so
// that a mirror that hangs leaves time for the next.
func mirrorShare(ctx context.Context, left int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || left <= 1 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(deadline)/time.Duration(left))
}

// choose picks, among the mirrors' heads, the one every other head is an
// ancestor of; on a fork, the one that contains local (else the first
// URL's), with the reason.
func (s *Store) choose(local plumbing.Hash) (plumbing.Hash, string) {
	var cands []int
	for i, h := range s.heads {
		if !h.IsZero() {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return plumbing.ZeroHash, ""
	}
	contains := func(a, b plumbing.Hash) bool { // a's history holds b
		if a == b {
			return true
		}
		ca, err := s.repo.CommitObject(a)
		if err != nil {
			return false
		}
		cb, err := s.repo.CommitObject(b)
		if err != nil {
			return false
		}
		ok, err := cb.IsAncestor(ca)
		return err == nil && ok
	}
	for _, i := range cands {
		all := true
		for _, j := range cands {
			if !contains(s.heads[i], s.heads[j]) {
				all = false
				break
			}
		}
		if all {
			return s.heads[i], ""
		}
	}
	pick := cands[0]
	if !local.IsZero() {
		for _, i := range cands {
			if contains(s.heads[i], local) {
				pick = i
				break
			}
		}
	}
	var parts []string
	for _, i := range cands {
		parts = append(parts, fmt.Sprintf("%s at %s", git.RedactURL(s.urls[i]), s.heads[i].String()[:7]))
	}
	return s.heads[pick], fmt.Sprintf("status mirrors have forked (%s): neither history contains the other; following %s, writing only where it fast-forwards; resolve by hand",
		strings.Join(parts, ", "), git.RedactURL(s.urls[pick]))
}

// pushMirrors sends hash to every mirror, fast-forward only (never
// forced). The first mirror that answers decides: its refusal is a
// conflict (another writer got there first). A later mirror that
// refuses has forked or moved on: recorded, not an error; one that does
// not answer catches up on a later write.
func (s *Store) pushMirrors(ctx context.Context, hash plumbing.Hash) error {
	spec := config.RefSpec(fmt.Sprintf("%s:%s", hash, s.remoteRef()))
	decided := false
	var errs []error
	for i, u := range s.urls {
		mctx, cancel := mirrorShare(ctx, len(s.urls)-i)
		err := s.repo.PushContext(mctx, s.access[i].PushOptions(u, []config.RefSpec{spec}))
		cancel()
		throttled := git.Throttle(err, time.Now())
		switch {
		case err == nil, errors.Is(err, gogit.NoErrAlreadyUpToDate):
			s.heads[i] = hash
			decided = true
		case isRejected(err):
			if !decided {
				return fmt.Errorf("push %s to %s: %w: %v", s.cfg.Branch, git.RedactURL(u), ErrConflict, git.RedactError(err, u))
			}
			s.forked = fmt.Sprintf("status mirror %s refused status commit %s (not a fast-forward of its branch): it has forked or another writer moved it",
				git.RedactURL(u), hash.String()[:7])
		case throttled != nil:
			errs = append(errs, fmt.Errorf("push %s to %s: %w: %w", s.cfg.Branch, git.RedactURL(u), sources.ErrUnreachable, throttled))
		default:
			errs = append(errs, fmt.Errorf("push %s to %s: %w: %v", s.cfg.Branch, git.RedactURL(u), sources.ErrUnreachable, git.RedactError(err, u)))
		}
	}
	if !decided {
		return errors.Join(errs...)
	}
	return nil
}

// ReadFromPeer reads the branch as a peer (the leader, which wrote it)
// holds it, instead of from the Git host: the peer's commits are fetched
// from url and taken only if they contain the local copy (the branch
// only grows); anything else is refused and the local copy kept.
func (s *Store) ReadFromPeer(ctx context.Context, url string, auth transport.AuthMethod, timeout time.Duration) (*State, error) {
	into := plumbing.ReferenceName("refs/driftless/peer/" + s.cfg.Branch)
	h, err := git.FetchFromPeer(ctx, s.repo, url, auth, s.localRef(), into, timeout)
	if err != nil {
		return nil, err
	}
	if r, err := s.repo.Reference(s.localRef(), true); err == nil && r.Hash() != h {
		c, err := s.repo.CommitObject(h)
		if err != nil {
			return nil, fmt.Errorf("peer %s: status commit %s: %w", git.RedactURL(url), h, err)
		}
		local, err := s.repo.CommitObject(r.Hash())
		if err != nil {
			return nil, err
		}
		if ok, err := local.IsAncestor(c); err != nil || !ok {
			return nil, fmt.Errorf("peer %s serves status commit %s, whose history does not contain this node's %s: refused", git.RedactURL(url), h.String()[:7], r.Hash().String()[:7])
		}
	}
	if err := s.repo.Storer.SetReference(plumbing.NewHashReference(s.localRef(), h)); err != nil {
		return nil, err
	}
	return s.local()
}
