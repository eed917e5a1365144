package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"driftless.dev/driftless/internal/sealed"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/volumes"
)

// Config configures a Reconciler.
type Config struct {
	// Node is written on every container (LabelNode).
	Node string
	// DataDir holds logs/ and pods/ (volumes).
	DataDir string
	Runtime Runtime
	Logger  *slog.Logger
	// Parallelism bounds concurrent runtime calls (default 8).
	Parallelism int
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
	// Network wires each replica's network namespace beyond loopback
	// (default LoopbackNetwork).
	Network Network
	// Secrets decrypts sealed Secrets when a replica that uses one is
	// created (default: a keyring with no identity, so such a replica
	// stays Pending with CreateContainerConfigError).
	Secrets SecretOpener
	// CallTimeout bounds one runtime call: list, create, start, label,
	// remove, a network set-up (default DefaultCallTimeout). A stop is
	// given its grace period plus this.
	CallTimeout time.Duration
	// PullTimeout bounds one image pull or import (default
	// DefaultPullTimeout). Only the replica that needs the image waits.
	PullTimeout time.Duration
	// DNS is what replicas' /etc/resolv.conf and /etc/hosts are made of.
	DNS DNSConfig
	// HostIP is the node's address (status.hostIP); default the host's
	// first non-loopback address.
	HostIP string
	// Claims gives the directories of claims bound to this node (default:
	// none, so a replica mounting a claim stays Pending, FailedMount).
	Claims ClaimDirs
	// ObservePull, when set, is told how long making each image
	// available took (a pull, an import, or finding it present).
	ObservePull func(d time.Duration, err error)
}

// ClaimDirs gives the directory of a claim's binding on this node,
// creating it on first use. Safe for concurrent use.
type ClaimDirs interface {
	Dir(b volumes.Binding) (string, error)
}

// SecretOpener decrypts the data of a sealed Secret, named
// "namespace/name" in errors. It must be safe for concurrent use (replicas
// are created in parallel) and never log or put a value in an error.
type SecretOpener interface {
	Open(secret string, data map[string][]byte) (map[string][]byte, error)
}

var _ SecretOpener = (*sealed.Keyring)(nil)

// Reconciler drives one node's containers toward its desired replicas.
// Sync is not safe for concurrent use: one goroutine owns it. Each
// replica's work (stop with its grace period, image pull, create, hooks)
// runs on that replica's own worker, so Sync never waits for it.
type Reconciler struct {
	cfg Config
	log *slog.Logger

	firstSeenExited map[string]time.Time
	// lastPIDSweep is when holders of shared process namespaces were
	// last swept (node loop only).
	lastPIDSweep time.Time
	imageRetry   map[ReplicaKey]time.Time
	imageFails   map[ReplicaKey]int
	lastErr      map[ReplicaKey]manifest.ReplicaStatus
	// networks caches each replica's network record by replica name.
	networks map[string]networkRecord
	wake     time.Time
	probes   *prober
	workers  *workers
	// mu guards the maps above while replica workers run.
	mu sync.Mutex
}

// New returns a Reconciler.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("reconcile: no runtime")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("reconcile: no data dir")
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Network == nil {
		cfg.Network = LoopbackNetwork{}
	}
	if cfg.Secrets == nil {
		cfg.Secrets = &sealed.Keyring{}
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = DefaultPullTimeout
	}
	r := &Reconciler{
		cfg:             cfg,
		log:             cfg.Logger,
		firstSeenExited: map[string]time.Time{},
		imageRetry:      map[ReplicaKey]time.Time{},
		imageFails:      map[ReplicaKey]int{},
		lastErr:         map[ReplicaKey]manifest.ReplicaStatus{},
		networks:        map[string]networkRecord{},
		probes:          newProber(cfg.Logger),
	}
	r.probes.kill = r.killForProbe
	r.workers = newWorkers(cfg.Parallelism)
	// A replica's work finishing is a change like a probe's: run a pass.
	r.workers.done = r.probes.changed
	return r, nil
}

// RetryImagePulls ends the image back-off of every replica, so that the
// next Sync tries their images at once: an image just appeared (an
// archive was dropped into the images dir). The failure count is kept.
func (r *Reconciler) RetryImagePulls() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.imageRetry {
		delete(r.imageRetry, k)
	}
}

// Changes signals that a probe result changed (readiness, or a container
// killed by its liveness probe) or that a replica's work finished: run a
// pass soon to report it.
func (r *Reconciler) Changes() <-chan struct{} { return r.probes.changed }

// NextWake is when a back-off expires (zero: nothing pending).
func (r *Reconciler) NextWake() time.Time { return r.wake }

// Sync runs one level-triggered pass: list, Diff, hand each replica's
// work to its worker, observe. It does not wait for the work: Changes
// signals when some finished, and the next pass observes it. A replica
// whose work is still running is left alone by this pass. It returns the
// observed status of every desired replica; an error means the runtime
// could not be listed (nothing was changed).
func (r *Reconciler) Sync(ctx context.Context, desired []DesiredReplica) (map[ReplicaKey]manifest.ReplicaStatus, error) {
	var actual []Container
	err := r.call(ctx, func(ctx context.Context) error {
		var err error
		actual, err = r.cfg.Runtime.List(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	now := r.cfg.Now()
	r.noteExits(actual, now)
	plan := Diff(desired, actual, r.backoffState(desired), now)
	if !plan.Empty() {
		byID := make(map[string]Container, len(actual))
		for _, c := range actual {
			byID[c.ID] = c
		}
		for _, w := range group(plan, byID) {
			w := w
			r.workers.dispatch(w.key, func(ctx context.Context) { r.runWork(ctx, w, byID) })
		}
	}
	r.wake = plan.Wake
	r.cleanupPods(ctx, desired, actual)
	r.probes.sync(r.probeWork(desired, actual))
	return r.observe(desired, actual, plan), nil
}

// Wait blocks until no replica has work in flight, or ctx ends. The
// agent never calls it; tests and benchmarks do, to see a pass's work
// done.
func (r *Reconciler) Wait(ctx context.Context) error { return r.workers.wait(ctx) }

func (r *Reconciler) backoffState(desired []DesiredReplica) BackoffState {
	r.mu.Lock()
	retry := make(map[ReplicaKey]time.Time, len(r.imageRetry))
	for k, t := range r.imageRetry {
		retry[k] = t
	}
	r.mu.Unlock()
	st := BackoffState{FirstSeenExited: r.firstSeenExited, ImageRetry: retry, Unstarted: map[string]bool{}}
	for _, d := range desired {
		for _, c := range d.Pod.InitContainers {
			id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
			if c.IsSidecar() && !r.probes.started(id, c) {
				st.Unstarted[id] = true
			}
		}
	}
	return st
}

// probeWork lists the running containers that have probes.
func (r *Reconciler) probeWork(desired []DesiredReplica, actual []Container) []probeWork {
	byID := map[string]Container{}
	for _, c := range actual {
		byID[c.ID] = c
	}
	var out []probeWork
	for _, d := range desired {
		for _, c := range append(append([]manifest.Container{}, d.Pod.InitContainers...), d.Pod.Containers...) {
			if c.LivenessProbe == nil && c.ReadinessProbe == nil && c.StartupProbe == nil {
				continue
			}
			id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
			a, ok := byID[id]
			if !ok || a.State != StateRunning {
				continue
			}
			w := probeWork{
				target:    target{ID: id, NetNS: a.Labels[LabelNetNS], Container: c, Exec: r.execer()},
				Gen:       a.Labels[LabelRestarts] + "/" + a.Labels[LabelStartedAt],
				StartedAt: a.StartedAt,
				Grace:     time.Duration(graceSeconds(d)) * time.Second,
			}
			if c.Lifecycle != nil {
				w.PreStop = c.Lifecycle.PreStop
			}
			out = append(out, w)
		}
	}
	return out
}

func (r *Reconciler) noteExits(actual []Container, now time.Time) {
	seen := map[string]bool{}
	for _, c := range actual {
		seen[c.ID] = true
		if c.State == StateExited {
			if _, ok := r.firstSeenExited[c.ID]; !ok {
				r.firstSeenExited[c.ID] = now
			}
		} else {
			delete(r.firstSeenExited, c.ID)
		}
	}
	for id := range r.firstSeenExited {
		if !seen[id] {
			delete(r.firstSeenExited, id)
		}
	}
}

// create makes the replica's volumes, then creates and starts its missing
// containers in spec order.
func (r *Reconciler) create(ctx context.Context, op CreateOp) (manifest.ReplicaStatus, error) {
	d, err := r.openSecrets(*op.Replica)
	if err != nil {
		return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "CreateContainerConfigError", Message: err.Error()}, err
	}
	key := d.Key()
	if sa := d.MissingServiceAccount; sa != "" {
		err := fmt.Errorf("serviceaccount %q not found", sa)
		return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "CreateContainerConfigError", Message: err.Error()}, err
	}
	vols, err := r.prepareVolumes(d)
	if err != nil {
		reason := "CreateContainerConfigError"
		var me *mountError
		if errors.As(err, &me) {
			reason = ReasonFailedMount
		}
		return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: reason, Message: err.Error()}, err
	}
	var netns string
	err = r.call(ctx, func(ctx context.Context) error {
		var err error
		netns, err = r.ensureNetNS(ctx, d)
		return err
	})
	if err != nil {
		return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "CreatePodSandboxError", Message: err.Error()}, err
	}
	for _, name := range op.Containers {
		var c manifest.Container
		for _, x := range append(append([]manifest.Container{}, d.Pod.InitContainers...), d.Pod.Containers...) {
			if x.Name == name {
				c = x
			}
		}
		spec, err := r.containerSpec(d, c, vols)
		spec.NetNSPath = netns
		if netns != "" {
			spec.Labels[LabelNetNS] = netns
		}
		if err != nil {
			return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "CreateContainerConfigError", Message: err.Error()}, err
		}
		if err := r.addPodFiles(d, &spec); err != nil {
			return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "CreateContainerConfigError", Message: err.Error()}, err
		}
		pctx, cancel := context.WithTimeout(WithPullCredentials(ctx, pullCredentials(d)), r.cfg.PullTimeout)
		pulled := time.Now()
		err = r.cfg.Runtime.EnsureImage(pctx, c.Image, c.ImagePullPolicy)
		cancel()
		if r.cfg.ObservePull != nil {
			r.cfg.ObservePull(time.Since(pulled), err)
		}
		if err != nil {
			r.mu.Lock()
			r.imageFails[key]++
			reason := "ErrImagePull"
			if r.imageFails[key] > 1 {
				reason = "ImagePullBackOff"
			}
			r.imageRetry[key] = r.cfg.Now().Add(Backoff(r.imageFails[key] - 1))
			r.mu.Unlock()
			return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: reason, Message: err.Error()}, err
		}
		if err := r.call(ctx, func(ctx context.Context) error { return r.cfg.Runtime.Create(ctx, spec) }); err != nil {
			reason := "CreateContainerError"
			if errors.Is(err, ErrInvalidSpec) {
				reason = "CreateContainerConfigError"
			}
			return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: reason, Message: err.Error()}, err
		}
		r.log.Info("starting container", "id", spec.ID, "workload", d.Workload.String(), "replica", d.Index)
		if err := r.call(ctx, func(ctx context.Context) error { return r.cfg.Runtime.Start(ctx, spec.ID) }); err != nil {
			return manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "RunContainerError", Message: err.Error()}, err
		}
		r.postStart(ctx, spec.ID, spec.Labels)
	}
	return manifest.ReplicaStatus{}, nil
}

// openSecrets returns d with its sealed Secrets decrypted, in a map of its
// own: the plaintext lives only as long as this create, in memory, and
// then in the container's environment and tmpfs volumes.
func (r *Reconciler) openSecrets(d DesiredReplica) (DesiredReplica, error) {
	var opened map[string]manifest.Secret
	// In name order, so that the reason of a Pending replica is stable.
	names := make([]string, 0, len(d.Secrets))
	for name, s := range d.Secrets {
		if s.Sealed {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s := d.Secrets[name]
		data, err := r.cfg.Secrets.Open(d.Workload.Namespace+"/"+name, s.Data)
		if err != nil {
			return d, err
		}
		if opened == nil {
			opened = make(map[string]manifest.Secret, len(d.Secrets))
			for n, x := range d.Secrets {
				opened[n] = x
			}
		}
		s.Data, s.Sealed = data, false
		opened[name] = s
	}
	if opened != nil {
		d.Secrets = opened
	}
	return d, nil
}

// NetNSPath is where the network namespace of a replica is mounted.
func (r *Reconciler) NetNSPath(ref manifest.Ref, index int) string {
	return filepath.Join(r.netnsDir(), filepath.Base(r.podDir(ref, index)))
}

// Close stops the reconciler's background work (probes, replica
// workers), waiting for the workers at most a few seconds. Containers
// keep running; work cut short is done again by the next agent's passes.
// Safe to call twice.
func (r *Reconciler) Close() {
	r.workers.close()
	r.probes.close()
}
