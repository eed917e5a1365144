package git

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
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
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	addTree := func(root string) {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = w.Add(p)
			}
			return nil
		})
	}
	if err := w.Add(dir); err != nil { // packed-refs is replaced by rename here
		w.Close()
		return nil, err
	}
	addTree(filepath.Join(dir, "refs"))
	out := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		defer close(out)
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if strings.HasSuffix(ev.Name, ".lock") {
					continue
				}
				if ev.Op&fsnotify.Create != 0 {
					if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
						addTree(ev.Name) // and rescan: events before the watch are missed
					}
				}
				rel, _ := filepath.Rel(dir, ev.Name)
				if rel != "packed-refs" && !strings.HasPrefix(rel, "refs") {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(100 * time.Millisecond)
				} else {
					timer.Reset(100 * time.Millisecond)
				}
				fire = timer.C
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default:
				}
			case <-w.Errors:
			}
		}
	}()
	return out, nil
}
