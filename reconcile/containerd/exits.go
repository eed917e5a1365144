package containerd

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
)

// Exits streams the ids of containers whose task exited, so that the
// reconciler can act at once. It re-subscribes with back-off when
// containerd restarts and closes the channel when ctx ends. Ids of exec'd
// processes are dropped; sends never block (a slow reader misses nothing
// that matters: the next pass lists everything anyway).
func (r *Runtime) Exits(ctx context.Context) (<-chan string, error) {
	out := make(chan string, 64)
	go func() {
		defer close(out)
		delay := 100 * time.Millisecond
		for ctx.Err() == nil {
			envs, errs := r.client.Subscribe(r.ctx(ctx), `topic=="/tasks/exit"`)
		recv:
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-errs:
					if err != nil && ctx.Err() == nil {
						r.log.Debug("event stream ended; re-subscribing", "err", err)
					}
					break recv
				case env := <-envs:
					if env == nil || env.Event == nil {
						continue
					}
					delay = 100 * time.Millisecond
					v, err := typeurl.UnmarshalAny(env.Event)
					if err != nil {
						continue
					}
					e, ok := v.(*apievents.TaskExit)
					if !ok || e.ID != e.ContainerID {
						continue
					}
					select {
					case out <- e.ContainerID:
					default:
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			if delay < 5*time.Second {
				delay *= 2
			}
		}
	}()
	return out, nil
}
