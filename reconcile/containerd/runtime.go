// Package containerd is the reconcile.Runtime on containerd's Go client:
// one containerd container (and task) per declared container, in the
// agent's namespace, carrying driftless's labels. Images come from OCI
// archives in a local directory or from the registry in the reference.
//
// It must never list, stop or delete a container without driftless's
// ownership labels, and never start a hidden helper container.
package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	apitask "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/reconcile"
)

// Config configures the runtime.
type Config struct {
	// Address is containerd's socket.
	Address string
	// Namespace is the containerd namespace (default "driftless").
	Namespace string
	// ImagesDir holds OCI image archives (*.tar) imported on demand.
	ImagesDir string
	Logger    *slog.Logger
	// Snapshotter defaults to overlayfs.
	Snapshotter string
	// LogWriter is the absolute path of the binary containerd's shim
	// starts to write a task's output to its log file, with rotation (the
	// driftless binary: containerlog.RunWriter). Empty: containerd's plain
	// file driver, without rotation or timestamps.
	LogWriter string
	// LogMaxSize is the size in bytes a log file may reach before it is
	// rotated (default containerlog.DefaultMaxSize), LogMaxFiles the
	// number of files kept per container, the current one included
	// (default containerlog.DefaultMaxFiles).
	LogMaxSize  int64
	LogMaxFiles int
	// Registry holds mirrors, rewrites, credentials and insecure hosts
	// for pulls; nil pulls from the registry in the image name with
	// containerd's defaults.
	Registry *RegistryConfig
	// Pause is the command of the process that holds a replica's shared
	// PID namespace: an absolute path to a statically linked binary (the
	// driftless binary) and its arguments. PauseRoot is the empty
	// directory it runs in as its root file system. Without them a
	// replica with shareProcessNamespace cannot be created.
	Pause     []string
	PauseRoot string
}

// Runtime implements reconcile.Runtime. Safe for concurrent use.
type Runtime struct {
	cfg    Config
	client *containerd.Client
	log    *slog.Logger

	mu       sync.Mutex
	imported map[string]string // archive path -> "size/mtime" imported
	importMu sync.Mutex        // serialises imports and unpacks
	closed   bool

	holders   map[string]*sync.Mutex // process namespace holder locks, by replica
	pauseOnce sync.Once
	pauseErr  error
}

var (
	_ reconcile.Runtime = (*Runtime)(nil)
	_ reconcile.Exiter  = (*Runtime)(nil)
	_ reconcile.Execer  = (*Runtime)(nil)
)

// New connects to containerd.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "driftless"
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = "overlayfs"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogMaxSize <= 0 {
		cfg.LogMaxSize = containerlog.DefaultMaxSize
	}
	if cfg.LogMaxFiles <= 0 {
		cfg.LogMaxFiles = containerlog.DefaultMaxFiles
	}
	if cfg.LogWriter != "" && !filepath.IsAbs(cfg.LogWriter) {
		return nil, fmt.Errorf("log writer %q: must be an absolute path", cfg.LogWriter)
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w: %v", cfg.Address, reconcile.ErrUnavailable, err)
	}
	return &Runtime{cfg: cfg, client: client, log: cfg.Logger, imported: map[string]string{}}, nil
}

// Close closes the connection. Safe to call twice.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.client.Close()
}

// Client exposes the containerd client (for tests and benchmarks).
func (r *Runtime) Client() *containerd.Client { return r.client }

func (r *Runtime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// wrap maps containerd and gRPC errors to reconcile's sentinels.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %v", op, reconcile.ErrNotFound, err)
	case status.Code(errors.Unwrap(err)) == codes.Unavailable || status.Code(err) == codes.Unavailable || errdefs.IsUnavailable(err) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "transport is closing"):
		return fmt.Errorf("%s: %w: %v", op, reconcile.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

var ownership = []string{reconcile.LabelWorkload, reconcile.LabelKind, reconcile.LabelReplica, reconcile.LabelContainer, reconcile.LabelSpecHash}

// List returns the owned containers with their task state: one call for
// the containers, one for all tasks.
func (r *Runtime) List(ctx context.Context) ([]reconcile.Container, error) {
	ctx = r.ctx(ctx)
	var conds []string
	for _, l := range ownership {
		conds = append(conds, fmt.Sprintf("labels.%q", l))
	}
	cs, err := r.client.ContainerService().List(ctx, strings.Join(conds, ","))
	if err != nil {
		return nil, wrap("list containers", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, wrap("list tasks", err)
	}
	tasks := map[string]*apitask.Process{}
	for _, t := range resp.Tasks {
		tasks[t.ID] = t
	}
	out := make([]reconcile.Container, 0, len(cs))
	for _, c := range cs {
		rc := reconcile.Container{ID: c.ID, Labels: c.Labels, State: reconcile.StateCreated}
		if s, err := time.Parse(time.RFC3339, c.Labels[reconcile.LabelStartedAt]); err == nil {
			rc.StartedAt = s
		}
		if t, ok := tasks[c.ID]; ok {
			switch t.Status {
			case apitask.Status_RUNNING, apitask.Status_PAUSED, apitask.Status_PAUSING:
				rc.State = reconcile.StateRunning
			case apitask.Status_STOPPED:
				rc.State = reconcile.StateExited
				rc.ExitCode = int(t.ExitStatus)
				if t.ExitedAt != nil {
					rc.FinishedAt = t.ExitedAt.AsTime()
				}
			case apitask.Status_CREATED:
				rc.State = reconcile.StateCreated
			default:
				rc.State = reconcile.StateUnknown
			}
		}
		out = append(out, rc)
	}
	return out, nil
}

// Normalize turns "busybox" into "docker.io/library/busybox:latest".
func Normalize(ref string) (string, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return n.String(), nil
}

// EnsureImage makes the image available and unpacked. IfNotPresent and
// Never use a local image (importing archives from ImagesDir first);
// Always pulls, and falls back to a local or archived image when the
// registry cannot be reached, so that air-gapped sites can run `:latest`
// images from their archives.
func (r *Runtime) EnsureImage(ctx context.Context, ref, pullPolicy string) error {
	ctx = r.ctx(ctx)
	name, err := Normalize(ref)
	if err != nil {
		return fmt.Errorf("%w: %v", reconcile.ErrImageNotFound, err)
	}
	var pullErr error
	if pullPolicy == "Always" && !r.inArchives(ctx, name) {
		if err := r.pull(ctx, name); err == nil {
			return nil
		} else {
			pullErr = err
		}
	}
	img, err := r.client.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		// One import at a time: parallel imports of one archive are slow
		// and pointless; the waiters find the image afterwards.
		r.importMu.Lock()
		img, err = r.client.GetImage(ctx, name)
		if errdefs.IsNotFound(err) {
			if _, ierr := r.importArchives(ctx); ierr != nil {
				r.log.Warn("import image archives", "dir", r.cfg.ImagesDir, "err", ierr)
			}
			img, err = r.client.GetImage(ctx, name)
			if errdefs.IsNotFound(err) {
				img, err = r.byDigest(ctx, name)
			}
		}
		r.importMu.Unlock()
		if errors.Is(err, errDigestMismatch) {
			return fmt.Errorf("%w: %v", reconcile.ErrImageNotFound, err)
		}
	}
	if errdefs.IsNotFound(err) && pullPolicy == "IfNotPresent" {
		if perr := r.pull(ctx, name); perr != nil {
			pullErr = perr
		} else {
			img, err = r.client.GetImage(ctx, name)
		}
	}
	if err != nil {
		if errdefs.IsNotFound(err) {
			msg := fmt.Sprintf("image %s not found locally", name)
			if r.cfg.ImagesDir != "" {
				msg += fmt.Sprintf(" or in %q", r.cfg.ImagesDir)
			}
			if pullErr != nil {
				msg += fmt.Sprintf(", and pull failed: %v", pullErr)
			}
			return fmt.Errorf("%w: %s", reconcile.ErrImageNotFound, msg)
		}
		return wrap("get image", err)
	}
	ok, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err != nil {
		return wrap("check image", err)
	}
	if !ok {
		r.importMu.Lock()
		defer r.importMu.Unlock()
		if ok, _ := img.IsUnpacked(ctx, r.cfg.Snapshotter); !ok {
			if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
				return wrap("unpack "+name, err)
			}
		}
	}
	return nil
}

// pull pulls and unpacks name from its registry, through the mirrors
// and rewrites of the registry configuration when there is one.
func (r *Runtime) pull(ctx context.Context, name string) error {
	opts := []containerd.RemoteOpt{containerd.WithPullUnpack, containerd.WithPullSnapshotter(r.cfg.Snapshotter)}
	reg := r.cfg.Registry
	pod := reconcile.PullCredentialsFrom(ctx)
	if reg == nil && len(pod) == 0 {
		_, err := r.client.Pull(ctx, name, opts...)
		return err
	}
	if reg == nil {
		reg = &RegistryConfig{}
	}
	res, target, trace, err := reg.resolver(name, pod)
	if err != nil {
		return fmt.Errorf("pull %s: %w", name, err)
	}
	start := time.Now()
	if _, err := r.client.Pull(ctx, name, append(opts, containerd.WithResolver(res))...); err != nil {
		return reg.explainPull(name, target, pod, err)
	}
	attrs := []any{"image", name, "from", strings.Join(trace.hosts(), ","), "took", time.Since(start).Round(time.Millisecond)}
	if target != name {
		attrs = append(attrs, "as", target)
	}
	r.log.Info("image pulled", attrs...)
	return nil
}

// inArchives reports whether the image is already local from an archive
// import; such images are not pulled again.
func (r *Runtime) inArchives(ctx context.Context, name string) bool {
	img, err := r.client.ImageService().Get(ctx, name)
	return err == nil && img.Labels["driftless.dev/imported-from"] != ""
}

// importArchives imports every archive of ImagesDir not imported yet (by
// path, size and modification time) and returns how many it imported.
// Callers hold importMu.
func (r *Runtime) importArchives(ctx context.Context) (int, error) {
	if r.cfg.ImagesDir == "" {
		return 0, nil
	}
	entries, err := os.ReadDir(r.cfg.ImagesDir)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".tar") {
			continue
		}
		p := filepath.Join(r.cfg.ImagesDir, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue
		}
		stamp := fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
		r.mu.Lock()
		done := r.imported[p] == stamp
		r.mu.Unlock()
		if done {
			continue
		}
		if err := r.importArchive(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		r.mu.Lock()
		r.imported[p] = stamp
		r.mu.Unlock()
		n++
	}
	return n, errors.Join(errs...)
}

func (r *Runtime) importArchive(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	imgs, err := r.client.Import(ctx, f)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	for _, i := range imgs {
		i.Labels = map[string]string{"driftless.dev/imported-from": filepath.Base(path)}
		if _, err := r.client.ImageService().Update(ctx, i, "labels.driftless.dev/imported-from"); err != nil {
			r.log.Debug("label imported image", "image", i.Name, "err", err)
		}
		r.log.Info("imported image", "image", i.Name, "archive", path)
	}
	return nil
}

// imageConfig reads the image's OCI config (entrypoint, cmd).
func imageConfig(ctx context.Context, img containerd.Image) (ocispec.ImageConfig, error) {
	desc, err := img.Config(ctx)
	if err != nil {
		return ocispec.ImageConfig{}, err
	}
	b, err := content.ReadBlob(ctx, img.ContentStore(), desc)
	if err != nil {
		return ocispec.ImageConfig{}, err
	}
	var ic ocispec.Image
	if err := json.Unmarshal(b, &ic); err != nil {
		return ocispec.ImageConfig{}, err
	}
	return ic.Config, nil
}

// Create creates the container; an existing one with the same id is kept.
func (r *Runtime) Create(ctx context.Context, spec reconcile.ContainerSpec) error {
	ctx = r.ctx(ctx)
	if _, err := r.client.LoadContainer(ctx, spec.ID); err == nil {
		return nil
	}
	name, err := Normalize(spec.Image)
	if err != nil {
		return err
	}
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		return wrap("image "+name, err)
	}
	ic, err := imageConfig(ctx, img)
	if err != nil {
		return wrap("image config "+name, err)
	}
	opts := []oci.SpecOpts{oci.WithImageConfig(img)}
	// Kubernetes: command replaces the entrypoint, args the cmd.
	switch {
	case len(spec.Command) > 0:
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, spec.Command...), spec.Args...)...))
	case len(spec.Args) > 0:
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, ic.Entrypoint...), spec.Args...)...))
	}
	if len(spec.Env) > 0 {
		opts = append(opts, oci.WithEnv(spec.Env))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	} else {
		if spec.NetNSPath != "" {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
		}
		if spec.Hostname != "" {
			opts = append(opts, oci.WithHostname(spec.Hostname))
		}
	}
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if m.Tmpfs {
			mounts = append(mounts, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: m.Destination, Options: []string{"nosuid", "nodev", "mode=1777"}})
			continue
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		// Kubernetes' None is private: without it a bind of a shared
		// host mount would share its peer group.
		prop := m.Propagation
		if prop == "" {
			prop = "rprivate"
		}
		opts := []string{"rbind", mode, prop}
		mounts = append(mounts, specs.Mount{Type: "bind", Source: m.Source, Destination: m.Destination, Options: opts})
	}
	if spec.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if name := spec.SharePIDNamespace; name != "" {
		if spec.HostPID {
			return fmt.Errorf("create %s: %w: hostPID and a shared process namespace together", spec.ID, reconcile.ErrInvalidSpec)
		}
		lock := r.holderLock(name)
		lock.Lock()
		path, err := r.ensureHolder(ctx, name)
		lock.Unlock()
		if err != nil {
			return fmt.Errorf("create %s: %w", spec.ID, err)
		}
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path}))
	}
	if spec.HostIPC {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	sec, err := securityOpts(spec.Security, ic)
	if err != nil {
		return fmt.Errorf("create %s: %w", spec.ID, err)
	}
	opts = append(opts, sec...)
	if spec.MemoryLimitBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryLimitBytes)))
	}
	if spec.CPUMilli > 0 {
		const period = 100000
		quota := spec.CPUMilli * period / 1000
		if quota < 1000 {
			quota = 1000
		}
		opts = append(opts, oci.WithCPUCFS(quota, period))
	}
	if spec.CPUSharesMilli > 0 {
		shares := uint64(spec.CPUSharesMilli * 1024 / 1000)
		if shares < 2 {
			shares = 2
		}
		opts = append(opts, oci.WithCPUShares(shares))
	}
	copts := []containerd.NewContainerOpts{
		containerd.WithContainerLabels(spec.Labels),
		containerd.WithSnapshotter(r.cfg.Snapshotter),
		containerd.WithNewSnapshot(spec.ID, img),
		containerd.WithNewSpec(opts...),
	}
	if spec.Runtime != "" {
		copts = append(copts, containerd.WithRuntime(spec.Runtime, nil))
	}
	_, err = r.client.NewContainer(ctx, spec.ID, copts...)
	if errdefs.IsAlreadyExists(err) {
		return nil
	}
	return wrap("create "+spec.ID, err)
}

// Start starts a new task, deleting an exited one first. The task's output
// goes from the shim to a log writer process the shim starts (or to the
// file itself), never through the agent, so it survives the agent.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap("load "+id, err)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		st, err := t.Status(ctx)
		if err == nil && st.Status == containerd.Running {
			return nil
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return wrap("delete old task of "+id, err)
		}
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return wrap("labels of "+id, err)
	}
	if name := labels[reconcile.LabelPIDNS]; name != "" {
		if err := r.joinHolder(ctx, c, name); err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
	}
	creator := cio.NullIO
	if p := labels[reconcile.LabelLogPath]; p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("log dir: %w", err)
		}
		creator = cio.LogFile(p)
		if r.cfg.LogWriter != "" {
			creator = cio.BinaryIO(r.cfg.LogWriter, containerlog.Args(p, r.cfg.LogMaxSize, r.cfg.LogMaxFiles))
		}
	}
	t, err := c.NewTask(ctx, creator)
	if err != nil {
		return wrap("create task "+id, err)
	}
	if err := t.Start(ctx); err != nil {
		_, _ = t.Delete(ctx, containerd.WithProcessKill)
		return wrap("start "+id, err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs every process.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap("load "+id, err)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap("task of "+id, err)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return wrap("status of "+id, err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	exited, err := t.Wait(ctx)
	if err != nil {
		return wrap("wait "+id, err)
	}
	if grace > 0 {
		if err := t.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return wrap("SIGTERM "+id, err)
		}
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return wrap("SIGKILL "+id, err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stop %s: task did not exit after SIGKILL", id)
	}
	return nil
}

// Remove stops the task at once and deletes the container and its
// snapshot. A missing container is not an error.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap("load "+id, err)
	}
	labels, err := c.Labels(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return wrap("labels of "+id, err)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return wrap("delete task of "+id, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return wrap("delete "+id, err)
	}
	if name := labels[reconcile.LabelPIDNS]; name != "" {
		return r.releaseHolder(ctx, name)
	}
	return nil
}

// SetLabels merges labels into the container's.
func (r *Runtime) SetLabels(ctx context.Context, id string, labels map[string]string) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap("load "+id, err)
	}
	_, err = c.SetLabels(ctx, labels)
	return wrap("set labels of "+id, err)
}
