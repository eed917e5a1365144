package git

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"driftless.dev/driftless/internal/fswatch"
)

// LocalPath returns the repository directory of a file:// URL (the .git
// directory of a non-bare one), or "" for other URLs.
func LocalPath(url string) string {
	p, ok := strings.CutPrefix(url, "file://")
	if !ok {
		if strings.HasPrefix(url, "/") {
			p = url
		} else {
			return ""
		}
	}
	if fi, err := os.Stat(filepath.Join(p, ".git")); err == nil && fi.IsDir() {
		return filepath.Join(p, ".git")
	}
	return p
}

// Watch signals when the refs of a local (file://) remote change, so that
// a synced mirror is picked up at once instead of at the next poll. It
// watches the refs directories (adding new subdirectories as they appear)
// and packed-refs, ignores lock files, and debounces bursts by 100 ms.
// Every file:// remote of the list (URL and mirrors) is watched. For
// other URLs it returns a nil channel: polling alone applies.
func (r *Repo) Watch(ctx context.Context) (<-chan struct{}, error) {
	var chans []<-chan struct{}
	for _, u := range append([]string{r.cfg.URL}, r.cfg.Mirrors...) {
		ch, err := WatchRefs(ctx, LocalPath(u))
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", u, err)
		}
		if ch != nil {
			chans = append(chans, ch)
		}
	}
	switch len(chans) {
	case 0:
		return nil, nil
	case 1:
		return chans[0], nil
	}
	out := make(chan struct{}, 1)
	for _, ch := range chans {
		go func() {
			for range ch {
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}()
	}
	return out, nil
}

// WatchRefs watches the refs of the repository in dir ("" = nothing).
func WatchRefs(ctx context.Context, dir string) (<-chan struct{}, error) {
	if dir == "" {
		return nil, nil
	}
	rel := func(p string) string {
		r, _ := filepath.Rel(dir, p)
		return r
	}
	// dir itself is watched for packed-refs, which is replaced by rename.
	return fswatch.Watch(ctx, dir, fswatch.Options{
		Debounce: 100 * time.Millisecond,
		Want: func(ev fsnotify.Event) bool {
			if strings.HasSuffix(ev.Name, ".lock") {
				return false
			}
			r := rel(ev.Name)
			return r == "packed-refs" || strings.HasPrefix(r, "refs")
		},
		Subdir: func(p string) bool {
			r := rel(p)
			return r == "refs" || strings.HasPrefix(r, "refs"+string(filepath.Separator))
		},
	})
}
