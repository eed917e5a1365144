// Package fswatch turns fsnotify events on one directory into a debounced
// "look again" signal. It never says what changed: callers re-read the
// directory (level-triggered), so a missed or coalesced event loses
// nothing.
package fswatch

import (
	"context"
	"fmt"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Dir watches the files directly in dir (not recursive) and sends on the
// returned channel once events stop for debounce. want filters events
// (nil: every event); onErr receives watcher errors (nil: dropped). The
// channel is closed when ctx ends. Sends never block: a signal not yet
// taken absorbs the next.
func Dir(ctx context.Context, dir string, debounce time.Duration, want func(fsnotify.Event) bool, onErr func(error)) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		defer close(out)
		timer := time.NewTimer(debounce)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if want == nil || want(ev) {
					timer.Reset(debounce)
				}
			case <-timer.C:
				select {
				case out <- struct{}{}:
				default:
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				if onErr != nil {
					onErr(err)
				}
			}
		}
	}()
	return out, nil
}
