package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/internal/peerauth"
)

// Peers share the objects they hold: each agent serves its local clones,
// read-only, with Git's smart HTTP upload-pack protocol (the server side
// of go-git), so that followers fetch a new commit from a peer that has
// it instead of from the Git host. What a peer serves goes through the
// same checks as a host fetch: objects are stored under the hash of
// their content, and the refs it names are taken only under the
// caller's rules (a commit asked for by hash, a branch that
// fast-forwards).

// ServeUploadPack answers the two requests of a smart HTTP fetch for the
// clone at dir: GET <base>/info/refs?service=git-upload-pack and POST
// <base>/git-upload-pack. rest is the request path after <base>.
func ServeUploadPack(w http.ResponseWriter, r *http.Request, dir, rest string) {
	repo, err := gogit.PlainOpen(dir)
	if err != nil {
		http.Error(w, "no such repository here", http.StatusNotFound)
		return
	}
	// go-git's server side advertises the refs; the objects of a fetch
	// are chosen here (objectsToSend).
	ep, _ := transport.NewEndpoint("/")
	srv := server.NewServer(server.MapLoader{ep.String(): repo.Storer})
	sess, err := srv.NewUploadPackSession(ep, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer sess.Close()
	switch {
	case r.Method == http.MethodGet && rest == "/info/refs" && r.URL.Query().Get("service") == transport.UploadPackServiceName:
		ar, err := sess.AdvertisedReferencesContext(r.Context())
		// go-git rewrites a ref file in place: read while this node's
		// own loop updates one, it is briefly empty. Read again.
		for try := 0; errors.Is(err, dotgit.ErrEmptyRefFile) && try < 20 && r.Context().Err() == nil; try++ {
			time.Sleep(5 * time.Millisecond)
			ar, err = sess.AdvertisedReferencesContext(r.Context())
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ar.Prefix = [][]byte{[]byte("# service=" + transport.UploadPackServiceName), pktline.Flush}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		w.Header().Set("Cache-Control", "no-cache")
		_ = ar.Encode(w)
	case r.Method == http.MethodPost && rest == "/git-upload-pack":
		req := packp.NewUploadPackRequest()
		body := io.LimitReader(r.Body, 1<<20)
		if err := req.Decode(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// go-git decodes the wants only; the haves follow them.
		haves, err := decodeHaves(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Haves = haves
		if req.IsEmpty() || len(req.Shallows) > 0 || req.Depth != nil && !req.Depth.IsZero() {
			http.Error(w, "want a full fetch of at least one commit", http.StatusBadRequest)
			return
		}
		objs, err := objectsToSend(repo.Storer, req.Wants, req.Haves)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		pr, pw := io.Pipe()
		go func() {
			// No delta search (window 0): what a follower lacks is a few
			// commits' worth of objects, and searching for deltas was
			// most of the cost of serving them.
			_, err := packfile.NewEncoder(pw, repo.Storer, false).Encode(objs, 0)
			pw.CloseWithError(err)
		}()
		resp := packp.NewUploadPackResponseWithPackfile(req, pr)
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		w.Header().Set("Cache-Control", "no-cache")
		_ = resp.Encode(w)
	default:
		http.Error(w, "only fetches (upload-pack) are served", http.StatusNotFound)
	}
}

// decodeHaves reads the "have <hash>" lines of an upload-pack request
// that follow its wants, up to "done".
func decodeHaves(r io.Reader) ([]plumbing.Hash, error) {
	var haves []plumbing.Hash
	s := pktline.NewScanner(r)
	for s.Scan() {
		line := strings.TrimSpace(string(s.Bytes()))
		switch {
		case line == "": // a flush between rounds
		case line == "done":
			return haves, nil
		case strings.HasPrefix(line, "have "):
			h := strings.TrimPrefix(line, "have ")
			if !fullSHA.MatchString(h) {
				return nil, fmt.Errorf("upload-pack request: bad have %q", h)
			}
			haves = append(haves, plumbing.NewHash(h))
		default:
			return nil, fmt.Errorf("upload-pack request: unexpected line %q", line)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("upload-pack request: %w", err)
	}
	return haves, nil // no "done": what came is what the fetcher has
}

// objectsToSend lists what a fetcher that has haves lacks to have wants:
// the commits from wants back to the first ones it has, and of their
// trees only what the trees of those it has do not hold. Its cost
// follows what changed, not the branch's history (go-git's own server
// walks every object reachable from the haves on each fetch).
func objectsToSend(st storer.EncodedObjectStorer, wants, haves []plumbing.Hash) ([]plumbing.Hash, error) {
	have := map[plumbing.Hash]bool{}
	for _, h := range haves {
		have[h] = true
	}
	var commits []*object.Commit
	var boundary []*object.Commit
	seen := map[plumbing.Hash]bool{}
	queue := append([]plumbing.Hash(nil), wants...)
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if seen[h] {
			continue
		}
		seen[h] = true
		c, err := object.GetCommit(st, h)
		if err != nil {
			if have[h] {
				continue // the fetcher has it; this clone need not
			}
			return nil, fmt.Errorf("commit %s: %w", h, err)
		}
		if have[h] {
			boundary = append(boundary, c)
			continue
		}
		commits = append(commits, c)
		queue = append(queue, c.ParentHashes...)
	}
	// What the fetcher's commits at the boundary hold.
	held := map[plumbing.Hash]bool{}
	var hold func(t *object.Tree)
	hold = func(t *object.Tree) {
		if held[t.Hash] {
			return
		}
		held[t.Hash] = true
		for _, e := range t.Entries {
			if e.Mode == filemode.Dir {
				if sub, err := object.GetTree(st, e.Hash); err == nil {
					hold(sub)
				}
				continue
			}
			held[e.Hash] = true
		}
	}
	for _, c := range boundary {
		if t, err := c.Tree(); err == nil {
			hold(t)
		}
	}
	var out []plumbing.Hash
	var add func(h plumbing.Hash) error
	add = func(tree plumbing.Hash) error {
		if held[tree] {
			return nil
		}
		held[tree] = true
		out = append(out, tree)
		t, err := object.GetTree(st, tree)
		if err != nil {
			return fmt.Errorf("tree %s: %w", tree, err)
		}
		for _, e := range t.Entries {
			switch {
			case e.Mode == filemode.Dir:
				if err := add(e.Hash); err != nil {
					return err
				}
			case e.Mode == filemode.Submodule || held[e.Hash]:
			default:
				held[e.Hash] = true
				out = append(out, e.Hash)
			}
		}
		return nil
	}
	for _, c := range commits {
		out = append(out, c.Hash)
		if err := add(c.TreeHash); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SignedAuth signs every request of a fetch from a peer with the node's
// key (peerauth), as go-git's HTTP transport asks of an auth method.
type SignedAuth struct {
	Node string
	Key  ssh.Signer
}

var _ githttp.AuthMethod = SignedAuth{}

// Name is the auth method's name.
func (SignedAuth) Name() string { return "driftless-node" }

// String names the node, never the key.
func (a SignedAuth) String() string { return "driftless-node " + a.Node }

// SetAuth signs r.
func (a SignedAuth) SetAuth(r *http.Request) { _ = peerauth.Sign(r, a.Node, a.Key, time.Now()) }

// FetchFromPeer fetches ref (a full ref name on the peer) from url into
// the clone as into, bounded by timeout. It returns the hash the peer
// named for it.
func FetchFromPeer(ctx context.Context, repo *gogit.Repository, url string, auth transport.AuthMethod, ref, into plumbing.ReferenceName, timeout time.Duration) (plumbing.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", ref, into))
	if err := Fetch(ctx, repo, url, Access{Auth: auth}, []config.RefSpec{spec}); err != nil {
		return plumbing.ZeroHash, err
	}
	r, err := repo.Reference(into, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("peer %s: %w", url, err)
	}
	return r.Hash(), nil
}
