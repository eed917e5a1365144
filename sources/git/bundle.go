package git

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"driftless.dev/driftless/internal/fswatch"
	"driftless.dev/driftless/sources"
)

// ErrBadBundle marks a bundle that cannot be imported: unreadable
// header, missing prerequisites, no ref for what the agent follows, or a
// packfile git refuses.
var ErrBadBundle = errors.New("bundle refused")

// BundleHeader is the text header of a git bundle (v2 or v3).
type BundleHeader struct {
	Version int
	// Capabilities are v3's "@key=value" lines.
	Capabilities map[string]string
	// Prerequisites are the commits the bundle's packfile builds on; the
	// receiving repository must have them all.
	Prerequisites []string
	// Refs maps each ref name in the bundle to its object id.
	Refs map[string]string
}

// maxHeader bounds a bundle header: a header is a few lines per ref.
const maxHeader = 1 << 20

// ParseBundleHeader reads a bundle's header up to the blank line that
// precedes the packfile.
func ParseBundleHeader(r io.Reader) (BundleHeader, error) {
	h := BundleHeader{Capabilities: map[string]string{}, Refs: map[string]string{}}
	br := bufio.NewReader(io.LimitReader(r, maxHeader))
	first, err := br.ReadString('\n')
	if err != nil && first == "" {
		return h, fmt.Errorf("%w: header: %v", ErrBadBundle, err)
	}
	switch strings.TrimSuffix(first, "\n") {
	case "# v2 git bundle":
		h.Version = 2
	case "# v3 git bundle":
		h.Version = 3
	default:
		return h, fmt.Errorf("%w: not a git bundle (first line %q)", ErrBadBundle, truncate(first, 40))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return h, fmt.Errorf("%w: header ends without the blank line before the packfile", ErrBadBundle)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if len(h.Refs) == 0 {
				return h, fmt.Errorf("%w: no refs", ErrBadBundle)
			}
			return h, nil
		case strings.HasPrefix(line, "@"):
			if h.Version < 3 {
				return h, fmt.Errorf("%w: capability %q in a v2 bundle", ErrBadBundle, line)
			}
			k, v, _ := strings.Cut(line[1:], "=")
			h.Capabilities[k] = v
		case strings.HasPrefix(line, "-"):
			id, _, _ := strings.Cut(line[1:], " ")
			if !fullSHA.MatchString(id) {
				return h, fmt.Errorf("%w: prerequisite %q is not a sha1 object id", ErrBadBundle, truncate(id, 64))
			}
			h.Prerequisites = append(h.Prerequisites, id)
		default:
			id, name, ok := strings.Cut(line, " ")
			if !ok || !fullSHA.MatchString(id) || name == "" {
				return h, fmt.Errorf("%w: bad ref line %q", ErrBadBundle, truncate(line, 80))
			}
			h.Refs[name] = id
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// followedRef is the bundle ref name that carries what the clone follows.
func (r *Repo) followedRef() string {
	if r.cfg.Ref != "" {
		return "refs/tags/" + r.cfg.Ref
	}
	return "refs/heads/" + r.cfg.Branch
}

// ImportBundle imports the objects of the bundle at path into the clone
// and returns the revision its ref for the followed branch (or tag)
// names. It checks, before anything is written, that the header parses,
// that only sha1 objects and no filter are declared, that every
// prerequisite is present and that the followed ref is in the bundle;
// then `git bundle verify` checks the packfile is complete and `git
// fetch` imports it under refs/driftless/bundle/. The followed ref of
// the clone is not moved: whether the new head is taken (fast-forward,
// signatures, validation) is the caller's decision. Errors wrap
// ErrBadBundle.
func (r *Repo) ImportBundle(ctx context.Context, path string) (sources.Revision, error) {
	f, err := os.Open(path)
	if err != nil {
		return sources.Revision{}, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	h, err := ParseBundleHeader(f)
	f.Close()
	if err != nil {
		return sources.Revision{}, err
	}
	if of, ok := h.Capabilities["object-format"]; ok && of != "sha1" {
		return sources.Revision{}, fmt.Errorf("%w: object format %s (only sha1)", ErrBadBundle, of)
	}
	if _, ok := h.Capabilities["filter"]; ok {
		return sources.Revision{}, fmt.Errorf("%w: a filtered (partial) bundle cannot be applied", ErrBadBundle)
	}
	var missing []string
	for _, p := range h.Prerequisites {
		if _, err := r.repo.CommitObject(plumbing.NewHash(p)); err != nil {
			missing = append(missing, p[:12])
		}
	}
	if len(missing) > 0 {
		return sources.Revision{}, fmt.Errorf("%w: missing prerequisite commit(s) %s: the bundle builds on history this clone does not have (make it from a commit the site already has, or a full bundle)",
			ErrBadBundle, strings.Join(missing, ", "))
	}
	name := r.followedRef()
	id, ok := h.Refs[name]
	if !ok {
		var names []string
		for n := range h.Refs {
			names = append(names, n)
		}
		sort.Strings(names)
		return sources.Revision{}, fmt.Errorf("%w: no %s in the bundle (it has %s)", ErrBadBundle, name, strings.Join(names, ", "))
	}
	if out, err := r.gitCLI(ctx, "bundle", "verify", "-q", path); err != nil {
		return sources.Revision{}, fmt.Errorf("%w: git bundle verify: %v: %s", ErrBadBundle, err, out)
	}
	local := "refs/driftless/bundle/" + strings.TrimPrefix(name, "refs/")
	if out, err := r.gitCLI(ctx, "fetch", "-q", "--no-tags", "--no-write-fetch-head", path, "+"+name+":"+local); err != nil {
		return sources.Revision{}, fmt.Errorf("%w: git fetch from bundle: %v: %s", ErrBadBundle, err, out)
	}
	// go-git indexes packfiles once: open the clone again to see the
	// pack git just wrote.
	repo, err := gogit.PlainOpen(r.cfg.Dir)
	if err != nil {
		return sources.Revision{}, fmt.Errorf("reopen clone: %w", err)
	}
	r.repo = repo
	hash := plumbing.NewHash(id)
	if tag, err := r.repo.TagObject(hash); err == nil {
		c, err := tag.Commit()
		if err != nil {
			return sources.Revision{}, fmt.Errorf("%w: tag %s: %v", ErrBadBundle, name, err)
		}
		hash = c.Hash
	}
	c, err := r.repo.CommitObject(hash)
	if err != nil {
		return sources.Revision{}, fmt.Errorf("%w: %s is not a commit: %v", ErrBadBundle, name, err)
	}
	return sources.Revision{
		Commit:    c.Hash.String(),
		Time:      c.Committer.When,
		Author:    fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Committer: fmt.Sprintf("%s <%s>", c.Committer.Name, c.Committer.Email),
		Subject:   strings.SplitN(c.Message, "\n", 2)[0],
		Remote:    "bundle:" + filepath.Base(path),
	}, nil
}

// gitCLI runs git on the bare clone, isolated from user and system
// configuration.
func (r *Repo) gitCLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", r.cfg.Dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(truncate(out.String(), 2000)), err
}

// Inbox is a directory where bundles are dropped (carried in on removable
// media, say). A bundle is taken once it is complete: named *.bundle (a
// writer that copies slowly writes another name and renames) and not
// modified for Settle. Taken bundles move to done/, refused ones to
// rejected/ next to a <name>.reason file. Not safe for concurrent use.
type Inbox struct {
	Dir string
	// Settle is how long a file must be left unmodified before it is
	// read (default 500 ms), for writers that do not rename.
	Settle time.Duration
}

// Pending returns the paths of the complete bundles waiting, oldest
// first, and whether some others are still being written.
func (in Inbox) Pending() (ready []string, waiting bool, err error) {
	entries, err := os.ReadDir(in.Dir)
	if err != nil {
		return nil, false, fmt.Errorf("bundle inbox: %w", err)
	}
	settle := in.Settle
	if settle <= 0 {
		settle = 500 * time.Millisecond
	}
	type item struct {
		path string
		mod  time.Time
	}
	var items []item
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".bundle") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if time.Since(fi.ModTime()) < settle {
			waiting = true
			continue
		}
		items = append(items, item{filepath.Join(in.Dir, e.Name()), fi.ModTime()})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].mod.Before(items[j].mod) })
	for _, it := range items {
		ready = append(ready, it.path)
	}
	return ready, waiting, nil
}

// Done moves a taken bundle to done/.
func (in Inbox) Done(path string) error {
	return in.move(path, "done")
}

// Reject moves a refused bundle to rejected/ and writes why next to it.
func (in Inbox) Reject(path, reason string) error {
	if err := in.move(path, "rejected"); err != nil {
		return err
	}
	p := filepath.Join(in.Dir, "rejected", filepath.Base(path)+".reason")
	if err := os.WriteFile(p, []byte(strings.TrimSpace(reason)+"\n"), 0o644); err != nil {
		return fmt.Errorf("bundle inbox: %w", err)
	}
	return nil
}

func (in Inbox) move(path, sub string) error {
	dir := filepath.Join(in.Dir, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle inbox: %w", err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if _, err := os.Stat(dst); err == nil {
		// A bundle of the same name came before: keep both.
		dst = filepath.Join(dir, fmt.Sprintf("%s.%d", filepath.Base(path), time.Now().UnixNano()))
	}
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("bundle inbox: %w", err)
	}
	return nil
}

// Watch signals (debounced by 250 ms) when something is created, written
// or renamed into the inbox. The caller re-reads Pending: events only
// make it look sooner.
func (in Inbox) Watch(ctx context.Context) (<-chan struct{}, error) {
	if err := os.MkdirAll(in.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bundle inbox: %w", err)
	}
	return fswatch.Dir(ctx, in.Dir, 250*time.Millisecond, nil, nil)
}
