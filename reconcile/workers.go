package reconcile

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"driftless.dev/driftless/manifest"
)

// Deadlines of runtime calls, as defaults of Config.
const (
	// DefaultCallTimeout bounds one containerd call (list, create, start,
	// label, remove). containerd answers these in tens of milliseconds;
	// a call still running after this is a hung daemon or shim.
	DefaultCallTimeout = 30 * time.Second
	// DefaultPullTimeout bounds one image pull or archive import. Long
	// enough for a large image on a slow link; a stalled registry is
	// given up after it and retried with the image back-off.
	DefaultPullTimeout = 10 * time.Minute
	// closeWait bounds how long Close waits for replica workers after
	// cancelling them.
	closeWait = 5 * time.Second
)

// replicaWork is what one pass asks of one replica: stop and remove its
// stale containers, then start what is due, then create what is missing,
// in that order (a replacement may need the old container's host port).
type replicaWork struct {
	key     ReplicaKey
	remove  []RemoveOp
	stop    []RemoveOp
	restart []string
	create  *CreateOp
}

// workers runs each replica's work on a goroutine of its own, like the
// kubelet's pod workers: a replica stopping through its grace period or
// pulling a large image never delays another replica, the pass, or the
// agent. A replica's work never runs twice at once: while it runs, later
// passes leave that replica alone and look again once it is done.
type workers struct {
	ctx    context.Context
	cancel context.CancelFunc
	// createSlots bounds concurrent creates (containerd's content store
	// and shims slow down past a handful at once). Stops never take one.
	createSlots chan struct{}
	// done signals (coalesced) that some replica's work finished.
	done chan struct{}

	mu   sync.Mutex
	busy map[ReplicaKey]bool
	wg   sync.WaitGroup
}

func newWorkers(parallel int) *workers {
	ctx, cancel := context.WithCancel(context.Background())
	return &workers{ctx: ctx, cancel: cancel, createSlots: make(chan struct{}, parallel),
		done: make(chan struct{}, 1), busy: map[ReplicaKey]bool{}}
}

// isBusy reports whether key has work in flight.
func (w *workers) isBusy(key ReplicaKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busy[key]
}

// busyKeys is a copy of the replicas with work in flight.
func (w *workers) busyKeys() map[ReplicaKey]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[ReplicaKey]bool, len(w.busy))
	for k := range w.busy {
		out[k] = true
	}
	return out
}

// dispatch starts f for key unless key already has work in flight. It
// never blocks. It reports whether f was started.
func (w *workers) dispatch(key ReplicaKey, f func(ctx context.Context)) bool {
	w.mu.Lock()
	if w.busy[key] || w.ctx.Err() != nil {
		w.mu.Unlock()
		return false
	}
	w.busy[key] = true
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer func() {
			w.mu.Lock()
			delete(w.busy, key)
			w.mu.Unlock()
			w.wg.Done()
			select {
			case w.done <- struct{}{}:
			default:
			}
		}()
		f(w.ctx)
	}()
	return true
}

// wait blocks until no work is in flight or ctx ends.
func (w *workers) wait(ctx context.Context) error {
	ch := make(chan struct{})
	go func() { w.wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close cancels the work in flight and waits for it, at most closeWait.
func (w *workers) close() {
	w.mu.Lock()
	w.cancel()
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	_ = w.wait(ctx)
}

// containerKey is the replica a container belongs to, from its labels.
func containerKey(c Container) ReplicaKey {
	idx, _ := strconv.Atoi(c.Labels[LabelReplica])
	return ReplicaKey{Workload: manifest.Ref{Namespace: c.Labels[LabelNamespace], Kind: c.Labels[LabelKind], Name: c.Labels[LabelWorkload]}, Index: idx}
}

// group splits a plan into each replica's work, in a stable order.
func group(plan Plan, byID map[string]Container) []*replicaWork {
	var order []ReplicaKey
	works := map[ReplicaKey]*replicaWork{}
	get := func(k ReplicaKey) *replicaWork {
		if w, ok := works[k]; ok {
			return w
		}
		w := &replicaWork{key: k}
		works[k] = w
		order = append(order, k)
		return w
	}
	for _, op := range plan.Remove {
		w := get(containerKey(byID[op.ID]))
		w.remove = append(w.remove, op)
	}
	for _, op := range plan.Stop {
		w := get(containerKey(byID[op.ID]))
		w.stop = append(w.stop, op)
	}
	for _, id := range plan.Restart {
		w := get(containerKey(byID[id]))
		w.restart = append(w.restart, id)
	}
	for i := range plan.Create {
		op := plan.Create[i]
		get(op.Replica.Key()).create = &op
	}
	out := make([]*replicaWork, 0, len(order))
	for _, k := range order {
		out = append(out, works[k])
	}
	return out
}

// call runs f with the call deadline.
func (r *Reconciler) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	return f(ctx)
}

// runWork does one replica's work, on its worker.
func (r *Reconciler) runWork(ctx context.Context, w *replicaWork, byID map[string]Container) {
	// Stale containers of the replica stop together: each gets its own
	// grace period, not the sum of all of them.
	var wg sync.WaitGroup
	for _, op := range append(append([]RemoveOp{}, w.remove...), w.stop...) {
		op := op
		removing := containsOp(w.remove, op.ID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if removing {
				r.log.Info("removing container", "id", op.ID, "grace", op.Grace)
			} else {
				r.log.Info("stopping sidecar: app containers finished", "id", op.ID)
			}
			sctx, cancel := context.WithTimeout(ctx, op.Grace+r.cfg.CallTimeout)
			err := r.stopContainer(sctx, byID[op.ID], op.Grace)
			cancel()
			if err != nil && !errors.Is(err, ErrNotFound) {
				r.log.Warn("stop container", "id", op.ID, "err", err)
			}
			if !removing {
				return
			}
			if err := r.call(ctx, func(ctx context.Context) error { return r.cfg.Runtime.Remove(ctx, op.ID) }); err != nil {
				r.log.Warn("remove container", "id", op.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	for _, id := range w.restart {
		r.restart(ctx, byID[id])
	}
	if w.create == nil {
		return
	}
	select {
	case r.workers.createSlots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-r.workers.createSlots }()
	st, err := r.create(ctx, *w.create)
	r.mu.Lock()
	defer r.mu.Unlock()
	key := w.create.Replica.Key()
	if err != nil {
		r.lastErr[key] = st
		r.log.Warn("replica not started", "workload", key.Workload.String(), "replica", key.Index, "reason", st.Reason, "err", err)
		return
	}
	delete(r.lastErr, key)
	delete(r.imageRetry, key)
	delete(r.imageFails, key)
}

func containsOp(ops []RemoveOp, id string) bool {
	for _, op := range ops {
		if op.ID == id {
			return true
		}
	}
	return false
}

// restart starts an exited (or created, never started) container again,
// counting the restart on its labels.
func (r *Reconciler) restart(ctx context.Context, c Container) {
	n := restartsOf(c)
	if c.State == StateExited {
		n++
	}
	labels := map[string]string{LabelRestarts: strconv.Itoa(n), LabelStartedAt: r.cfg.Now().UTC().Format(time.RFC3339)}
	if c.State == StateExited {
		r.log.Info("restarting container", "id", c.ID, "exitCode", c.ExitCode, "restarts", n)
	}
	if err := r.call(ctx, func(ctx context.Context) error { return r.cfg.Runtime.SetLabels(ctx, c.ID, labels) }); err != nil {
		r.log.Warn("label container", "id", c.ID, "err", err)
	}
	if err := r.call(ctx, func(ctx context.Context) error { return r.cfg.Runtime.Start(ctx, c.ID) }); err != nil {
		r.log.Warn("start container", "id", c.ID, "err", err)
		return
	}
	r.postStart(ctx, c.ID, c.Labels)
}
