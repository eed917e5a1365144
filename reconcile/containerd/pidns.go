package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"driftless.dev/driftless/internal/pause"
	"driftless.dev/driftless/reconcile"
)

// A replica with shareProcessNamespace has one holder container: the pause
// process as PID 1 of the namespace its containers join, so that any of
// them can restart without taking the others' processes with it. The
// holder carries only LabelPIDNSHolder (List does not return it); each
// container that joins it carries reconcile.LabelPIDNS, and the holder is
// removed with the last of them.

// LabelPIDNSHolder marks a holder container with the name it holds for.
const LabelPIDNSHolder = "driftless.dev/pidns-holder"

// pauseMount is where the pause binary is bind-mounted in the holder's
// empty root file system.
const pauseMount = "/.driftless-pause"

// holderID is the containerd id of the holder of name.
func holderID(name string) string { return "pidns-" + name }

// holderLock serialises the holder's creation and removal per name.
func (r *Runtime) holderLock(name string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.holders == nil {
		r.holders = map[string]*sync.Mutex{}
	}
	m, ok := r.holders[name]
	if !ok {
		m = &sync.Mutex{}
		r.holders[name] = m
	}
	return m
}

// pauseReady checks once that the pause binary can run in an empty root.
func (r *Runtime) pauseReady() error {
	r.pauseOnce.Do(func() {
		switch {
		case len(r.cfg.Pause) == 0 || r.cfg.PauseRoot == "":
			r.pauseErr = errors.New("this agent has no pause binary configured")
		case !filepath.IsAbs(r.cfg.Pause[0]):
			r.pauseErr = fmt.Errorf("pause binary %q: must be an absolute path", r.cfg.Pause[0])
		default:
			r.pauseErr = pause.CheckStatic(r.cfg.Pause[0])
		}
		if r.pauseErr != nil {
			return
		}
		// The mount points exist before any holder starts, so that
		// concurrent runc runs never create them at once.
		for _, d := range []string{"proc", "dev", "sys", "etc"} {
			if err := os.MkdirAll(filepath.Join(r.cfg.PauseRoot, d), 0o755); err != nil {
				r.pauseErr = fmt.Errorf("pause root: %w", err)
				return
			}
		}
		f, err := os.OpenFile(filepath.Join(r.cfg.PauseRoot, pauseMount), os.O_CREATE|os.O_RDONLY, 0o555)
		if err != nil {
			r.pauseErr = fmt.Errorf("pause root: %w", err)
			return
		}
		f.Close()
	})
	return r.pauseErr
}

// ensureHolder makes sure the holder of name runs and returns the path
// of its PID namespace. Call with the holder's lock held.
func (r *Runtime) ensureHolder(ctx context.Context, name string) (string, error) {
	if err := r.pauseReady(); err != nil {
		return "", fmt.Errorf("shareProcessNamespace: %w: %v", reconcile.ErrInvalidSpec, err)
	}
	id := holderID(name)
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		mounts := []specs.Mount{{Type: "bind", Source: r.cfg.Pause[0], Destination: pauseMount, Options: []string{"rbind", "ro", "rprivate"}}}
		c, err = r.client.NewContainer(ctx, id,
			containerd.WithContainerLabels(map[string]string{LabelPIDNSHolder: name}),
			containerd.WithNewSpec(
				oci.WithRootFSPath(r.cfg.PauseRoot),
				oci.WithRootFSReadonly(),
				oci.WithMounts(mounts),
				oci.WithProcessArgs(append([]string{pauseMount}, r.cfg.Pause[1:]...)...),
				oci.WithProcessCwd("/"),
				oci.WithHostname("pause"),
				oci.WithCapabilities(nil),
				oci.WithNoNewPrivileges,
			))
		if errdefs.IsAlreadyExists(err) {
			c, err = r.client.LoadContainer(ctx, id)
		}
	}
	if err != nil {
		return "", wrap("process namespace holder "+id, err)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		st, err := t.Status(ctx)
		if err == nil && st.Status == containerd.Running {
			return pidNSPath(t.Pid()), nil
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return "", wrap("delete old task of "+id, err)
		}
	}
	t, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return "", wrap("create task "+id, err)
	}
	if err := t.Start(ctx); err != nil {
		_, _ = t.Delete(ctx, containerd.WithProcessKill)
		return "", wrap("start "+id, err)
	}
	r.log.Info("started process namespace holder", "replica", name, "pid", t.Pid())
	return pidNSPath(t.Pid()), nil
}

func pidNSPath(pid uint32) string { return fmt.Sprintf("/proc/%d/ns/pid", pid) }

// joinHolder points the container's PID namespace at its holder's
// current process before a new task starts: a holder that was restarted
// has a new PID, and a stale path could name another process.
func (r *Runtime) joinHolder(ctx context.Context, c containerd.Container, name string) error {
	lock := r.holderLock(name)
	lock.Lock()
	defer lock.Unlock()
	path, err := r.ensureHolder(ctx, name)
	if err != nil {
		return err
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return wrap("spec of "+c.ID(), err)
	}
	if spec.Linux == nil {
		return fmt.Errorf("spec of %s has no linux section", c.ID())
	}
	changed := false
	found := false
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			found = true
			if ns.Path != path {
				spec.Linux.Namespaces[i].Path = path
				changed = true
			}
		}
	}
	if !found {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path})
		changed = true
	}
	if !changed {
		return nil
	}
	err = c.Update(ctx, func(ctx context.Context, client *containerd.Client, cc *containers.Container) error {
		return containerd.WithSpec(spec)(ctx, client, cc)
	})
	return wrap("update process namespace of "+c.ID(), err)
}

// releaseHolder removes the holder of name when no container joins it
// any more.
func (r *Runtime) releaseHolder(ctx context.Context, name string) error {
	lock := r.holderLock(name)
	lock.Lock()
	defer lock.Unlock()
	users, err := r.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q==%q", reconcile.LabelPIDNS, name))
	if err != nil {
		return wrap("list containers of "+name, err)
	}
	if len(users) > 0 {
		return nil
	}
	return r.removeHolder(ctx, holderID(name))
}

func (r *Runtime) removeHolder(ctx context.Context, id string) error {
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap("load "+id, err)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return wrap("delete task of "+id, err)
		}
	}
	if err := c.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return wrap("delete "+id, err)
	}
	r.log.Info("removed process namespace holder", "id", id)
	return nil
}

// SweepPIDNamespaces removes holders that no container joins and that
// are older than a minute (younger ones may be waiting for the first
// container of their replica): what an agent killed between a replica's
// last container and its holder leaves behind.
func (r *Runtime) SweepPIDNamespaces(ctx context.Context) error {
	ctx = r.ctx(ctx)
	holders, err := r.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", LabelPIDNSHolder))
	if err != nil || len(holders) == 0 {
		return wrap("list process namespace holders", err)
	}
	var errs []error
	for _, h := range holders {
		name := h.Labels[LabelPIDNSHolder]
		if time.Since(h.CreatedAt) < time.Minute || name == "" || !strings.HasPrefix(h.ID, "pidns-") {
			continue
		}
		errs = append(errs, r.releaseHolder(ctx, name))
	}
	return errors.Join(errs...)
}
