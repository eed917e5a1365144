// Package fswatch turns fsnotify events on a directory (optionally with
// some of its subdirectories) into a debounced "look again" signal. It
// never says what changed: callers re-read the directory
// (level-triggered), so a missed or coalesced event loses nothing.
package fswatch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Options configures Watch.
type Options struct {
	// Debounce is how long events must stop before a signal.
	Debounce time.Duration
	// Want filters events (nil: every event). An event it rejects is
	// ignored entirely: it neither signals nor adds a subdirectory.
	Want func(fsnotify.Event) bool
	// Subdir reports whether a directory below the watched one is
	// watched too, both those there at the start and those created later
	// (nil: none, only the files directly in the directory). A rejected
	// directory's subtree is not looked into.
	Subdir func(path string) bool
	// OnErr receives watcher errors (nil: dropped).
	OnErr func(error)
}

// Dir watches the files directly in dir (not recursive) and sends on the
// returned channel once events stop for debounce. want filters events
// (nil: every event); onErr receives watcher errors (nil: dropped). The
// channel is closed when ctx ends. Sends never block: a signal not yet
// taken absorbs the next.
func Dir(ctx context.Context, dir string, debounce time.Duration, want func(fsnotify.Event) bool, onErr func(error)) (<-chan struct{}, error) {
	return Watch(ctx, dir, Options{Debounce: debounce, Want: want, OnErr: onErr})
}

// Watch is Dir with the subdirectories o.Subdir selects: they are added
// when the watch starts and, as a wanted Create event reports them, while
// it runs (events in a new directory before it is added are missed; the
// Create event's signal makes the caller look again). The directory dir
// itself must exist; failing to add a subdirectory is reported to o.OnErr.
func Watch(ctx context.Context, dir string, o Options) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	onErr := func(err error) {
		if o.OnErr != nil {
			o.OnErr(err)
		}
	}
	// addTree adds root (unless it is the watched directory, already
	// added) and the subdirectories below it that o.Subdir selects.
	addTree := func(root string) {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if p == dir {
				return nil
			}
			if p != root && !o.Subdir(p) {
				return filepath.SkipDir
			}
			if err := w.Add(p); err != nil {
				onErr(fmt.Errorf("watch %s: %w", p, err))
			}
			return nil
		})
	}
	if o.Subdir != nil {
		addTree(dir)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		defer close(out)
		timer := time.NewTimer(o.Debounce)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if o.Want != nil && !o.Want(ev) {
					continue
				}
				if o.Subdir != nil && ev.Op&fsnotify.Create != 0 {
					if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && o.Subdir(ev.Name) {
						addTree(ev.Name)
					}
				}
				timer.Reset(o.Debounce)
			case <-timer.C:
				select {
				case out <- struct{}{}:
				default:
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				onErr(err)
			}
		}
	}()
	return out, nil
}
