package sources

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"driftless.dev/driftless/manifest"
)

// File is one manifest file of a commit.
type File = manifest.File

// Revision is the commit a source follows now.
type Revision struct {
	Commit    string
	Time      time.Time
	Author    string
	Committer string
	Subject   string
	// Remote is the URL the revision was fetched from ("" when nothing
	// was fetched, e.g. a pinned commit already present).
	Remote string
}

// Errors a Source returns, wrapped with context; callers use errors.Is.
var (
	// ErrUnreachable: the remote could not be reached or is missing. The
	// local clone still answers Files and Has for what it holds.
	ErrUnreachable = errors.New("remote unreachable")
	// ErrRefNotFound: the branch, tag or commit followed does not exist.
	ErrRefNotFound = errors.New("ref not found")
)

// Throttled is a Git host's request to come back later: an HTTP 429 (too
// many requests) or 503 (unavailable) answer, with the wait its
// Retry-After header asked for (0 when it gave none). It comes wrapped
// together with ErrUnreachable.
type Throttled struct {
	Status int
	After  time.Duration
}

func (t *Throttled) Error() string {
	msg := fmt.Sprintf("the Git host answered %d %s", t.Status, http.StatusText(t.Status))
	if t.After > 0 {
		msg += fmt.Sprintf(" and asks to retry after %s", t.After)
	}
	return msg
}

// MaxRetryAfter bounds the wait a Git host's Retry-After can impose.
const MaxRetryAfter = 30 * time.Minute

// RetryAfter is the wait a Throttled in err asks for, at most
// MaxRetryAfter; false when err holds none that names a wait.
func RetryAfter(err error) (time.Duration, bool) {
	var t *Throttled
	if !errors.As(err, &t) || t.After <= 0 {
		return 0, false
	}
	return min(t.After, MaxRetryAfter), true
}

// Source is the desired-state repository as the agent sees it. Methods
// are safe for use by one goroutine at a time.
type Source interface {
	// Sync fetches the remote and returns the revision followed now.
	Sync(ctx context.Context) (Revision, error)
	// Files returns every *.yaml/*.yml file below dir ("" = root) of the
	// commit's tree, paths relative to dir, read from the object store.
	Files(ctx context.Context, commit, dir string) ([]File, error)
	// Has reports whether the commit is present locally.
	Has(commit string) bool
}

// Jitter returns d plus a random extra of up to frac*d, so that many
// agents polling one server do not fetch in lockstep.
func Jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 || frac <= 0 {
		return d
	}
	return d + time.Duration(rand.Float64()*frac*float64(d))
}
