package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"driftless.dev/driftless/manifest"
)

// Labels that let the reconciler stop a container properly even when its
// workload is gone from the desired commit: the hooks (named ports
// resolved) and the replica's network namespace.
const (
	LabelPostStart = "driftless.dev/post-start"
	LabelPreStop   = "driftless.dev/pre-stop"
	LabelNetNS     = "driftless.dev/netns"
)

// maxLabel is containerd's limit on one label (key and value).
const maxLabel = 4096

// hookLabel encodes a hook with its named port resolved.
func hookLabel(c manifest.Container, h *manifest.LifecycleHandler) (string, error) {
	if h == nil {
		return "", nil
	}
	x := *h
	if x.HTTPGet != nil {
		g := *x.HTTPGet
		port, ok := c.PortNumber(g.Port)
		if !ok {
			return "", fmt.Errorf("container %s: hook port %q: no port of that name", c.Name, g.Port.StrVal)
		}
		g.Port = manifest.IntOrString{IntVal: port}
		x.HTTPGet = &g
	}
	b, err := json.Marshal(x)
	if err != nil {
		return "", err
	}
	if len(b)+len(LabelPreStop) > maxLabel {
		return "", fmt.Errorf("container %s: lifecycle hook longer than %d bytes", c.Name, maxLabel-len(LabelPreStop))
	}
	return string(b), nil
}

func hookOf(labels map[string]string, key string) *manifest.LifecycleHandler {
	v := labels[key]
	if v == "" {
		return nil
	}
	var h manifest.LifecycleHandler
	if json.Unmarshal([]byte(v), &h) != nil {
		return nil
	}
	return &h
}

func (r *Reconciler) execer() Execer {
	ex, _ := r.cfg.Runtime.(Execer)
	return ex
}

// runHook runs a lifecycle hook bounded by timeout.
func (r *Reconciler) runHook(ctx context.Context, id, netns string, h *manifest.LifecycleHandler, timeout time.Duration) error {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, msg := runHandler(hctx, target{ID: id, NetNS: netns, Exec: r.execer()}, manifest.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet})
	if !ok {
		return errors.New(msg)
	}
	return nil
}

// postStart runs the container's postStart hook after a start. A failed
// hook kills the container, as the kubelet does; the restart policy and
// back-off then apply. The hook is bounded by the grace period.
func (r *Reconciler) postStart(ctx context.Context, id string, labels map[string]string) {
	h := hookOf(labels, LabelPostStart)
	if h == nil {
		return
	}
	grace := graceOf(Container{Labels: labels})
	if grace < time.Second {
		grace = time.Second
	}
	if err := r.runHook(ctx, id, labels[LabelNetNS], h, grace); err != nil {
		r.log.Warn("postStart hook failed; killing container", "id", id, "err", err)
		if err := r.cfg.Runtime.Stop(ctx, id, 0); err != nil && !errors.Is(err, ErrNotFound) {
			r.log.Warn("stop container", "id", id, "err", err)
		}
	}
}

// stopContainer runs the preStop hook of a running container, then stops
// it; the grace period covers both, and SIGTERM gets at least 2 s after a
// hook, as with the kubelet.
func (r *Reconciler) stopContainer(ctx context.Context, c Container, grace time.Duration) error {
	if h := hookOf(c.Labels, LabelPreStop); h != nil && c.State == StateRunning && grace > 0 {
		start := time.Now()
		if err := r.runHook(ctx, c.ID, c.Labels[LabelNetNS], h, grace); err != nil {
			r.log.Warn("preStop hook failed", "id", c.ID, "err", err)
		}
		grace -= time.Since(start)
		if grace < 2*time.Second {
			grace = 2 * time.Second
		}
	}
	return r.cfg.Runtime.Stop(ctx, c.ID, grace)
}

// killForProbe stops a container whose liveness or startup probe failed.
func (r *Reconciler) killForProbe(ctx context.Context, w probeWork, reason string) {
	ctx = context.WithoutCancel(ctx)
	labels := map[string]string{LabelNetNS: w.NetNS}
	if w.PreStop != nil {
		if v, err := hookLabel(w.Container, w.PreStop); err == nil {
			labels[LabelPreStop] = v
		}
	}
	c := Container{ID: w.ID, State: StateRunning, Labels: labels}
	if err := r.stopContainer(ctx, c, w.Grace); err != nil && !errors.Is(err, ErrNotFound) {
		r.log.Warn("stop container after probe failure", "id", w.ID, "reason", reason, "err", err)
	}
}

func graceSeconds(d DesiredReplica) int64 {
	if d.Pod.TerminationGracePeriodSeconds != nil {
		return *d.Pod.TerminationGracePeriodSeconds
	}
	return 30
}
