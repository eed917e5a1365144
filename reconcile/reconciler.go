package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"driftless.dev/driftless/containerlog"
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
	imageRetry      map[ReplicaKey]time.Time
	imageFails      map[ReplicaKey]int
	lastErr         map[ReplicaKey]manifest.ReplicaStatus
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
		err = r.cfg.Runtime.EnsureImage(pctx, c.Image, c.ImagePullPolicy)
		cancel()
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

// observe computes each desired replica's status from the containers
// and the probe results.
func (r *Reconciler) observe(desired []DesiredReplica, actual []Container, plan Plan) map[ReplicaKey]manifest.ReplicaStatus {
	byID := map[string]Container{}
	for _, c := range actual {
		byID[c.ID] = c
	}
	now := r.cfg.Now()
	r.mu.Lock()
	lastErr := make(map[ReplicaKey]manifest.ReplicaStatus, len(r.lastErr))
	for k, v := range r.lastErr {
		lastErr[k] = v
	}
	r.mu.Unlock()
	out := make(map[ReplicaKey]manifest.ReplicaStatus, len(desired))
	for _, d := range desired {
		key := d.Key()
		if d.Held != "" {
			out[key] = r.observeHeld(d, actual)
			continue
		}
		st := manifest.ReplicaStatus{SpecHash: d.SpecHash, PodIP: r.podIP(d)}
		for _, c := range d.Pod.InitContainers {
			if a, ok := byID[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)]; ok {
				st.Restarts += restartsOf(a)
			}
		}
		if prog := initProgress(d, byID, r.backoffState([]DesiredReplica{d}).Unstarted); !prog.Done {
			st.Phase = manifest.PhasePending
			n := len(d.Pod.InitContainers)
			st.Reason = fmt.Sprintf("Init:%d/%d", prog.Completed, n)
			if prog.Failed {
				st.Phase, st.Reason = manifest.PhaseFailed, "Init:Error"
			} else {
				c := d.Pod.InitContainers[prog.Next]
				a, ok := byID[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)]
				if ok && a.State == StateExited && a.ExitCode != 0 {
					st.Reason = "Init:CrashLoopBackOff"
					st.Message = fmt.Sprintf("init container %s: last exit code %d", c.Name, a.ExitCode)
				} else if !ok {
					if e, ok := lastErr[key]; ok {
						st.Reason, st.Message = e.Reason, e.Message
					}
				}
			}
			out[key] = st
			continue
		}
		running, succeeded, failed, missing, waiting := 0, 0, 0, 0, 0
		var lastExit int
		var lastMsg string
		var unready []string
		for _, c := range d.Pod.InitContainers {
			id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
			if a, ok := byID[id]; c.IsSidecar() && (!ok || a.State != StateRunning || !r.probes.ready(id, c)) {
				unready = append(unready, c.Name)
			}
		}
		for _, c := range d.Pod.Containers {
			id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
			a, ok := byID[id]
			if !ok {
				missing++
				continue
			}
			st.Restarts += restartsOf(a)
			switch a.State {
			case StateRunning:
				running++
				if !r.probes.ready(id, c) {
					unready = append(unready, c.Name)
				}
			case StateExited:
				lastExit = a.ExitCode
				if m := r.terminationMessage(d, c, id, a.ExitCode); m != "" {
					lastMsg = m
				}
				if shouldRestart(d.Pod.RestartPolicy, a.ExitCode) {
					waiting++
				} else if a.ExitCode == 0 {
					succeeded++
				} else {
					failed++
				}
			default:
				missing++
			}
		}
		n := len(d.Pod.Containers)
		switch {
		case missing > 0:
			st.Phase = manifest.PhasePending
			st.Reason = "ContainerCreating"
			if e, ok := lastErr[key]; ok {
				st.Reason, st.Message = e.Reason, e.Message
			}
		case running == n && len(unready) == 0:
			st.Phase, st.Ready = manifest.PhaseRunning, true
		case running == n:
			st.Phase, st.Reason = manifest.PhaseRunning, "ContainersNotReady"
			st.Message = "containers with unready status: " + strings.Join(unready, ", ")
		case succeeded == n:
			st.Phase, st.Reason = manifest.PhaseSucceeded, "Completed"
		case failed > 0 && running == 0 && waiting == 0:
			st.Phase, st.Reason, st.Message = manifest.PhaseFailed, "Error", fmt.Sprintf("exit code %d", lastExit)
		case waiting > 0:
			st.Phase, st.Reason = manifest.PhaseRunning, "CrashLoopBackOff"
			st.Message = fmt.Sprintf("last exit code %d", lastExit)
			if !plan.Wake.IsZero() {
				st.Message += fmt.Sprintf(", restarting in %s", plan.Wake.Sub(now).Round(time.Second))
			}
		default:
			st.Phase = manifest.PhaseRunning
		}
		// The countdown is not part of what is committed.
		if st.Reason == "CrashLoopBackOff" {
			st.Message = fmt.Sprintf("last exit code %d", lastExit)
		}
		if lastMsg != "" && (st.Reason == "CrashLoopBackOff" || st.Reason == "Error" || st.Reason == "Completed") {
			if st.Message != "" {
				st.Message += ": "
			}
			st.Message += lastMsg
		}
		out[key] = st
	}
	return out
}

// observeHeld is the status of a replica whose spec is not known here:
// Pending, or Running (not ready: nothing probes it) while containers of
// an earlier spec still run.
func (r *Reconciler) observeHeld(d DesiredReplica, actual []Container) manifest.ReplicaStatus {
	st := manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: ReasonCommitNotLoaded, Message: d.Held}
	for _, c := range actual {
		if containerKey(c) == d.Key() && c.State == StateRunning {
			st.Phase = manifest.PhaseRunning
			st.SpecHash = c.Labels[LabelSpecHash]
		}
	}
	return st
}

// podDir is the replica's directory for its volumes.
func (r *Reconciler) podDir(ref manifest.Ref, index int) string {
	return filepath.Join(r.cfg.DataDir, "pods", fmt.Sprintf("%s_%s_%s_%d", ref.Namespace, strings.ToLower(ref.Kind), ref.Name, index))
}

// prepareVolumes creates the replica's emptyDir volumes (a tmpfs for
// medium Memory) and checks its hostPath volumes. It returns each volume's
// host path by name.
func (r *Reconciler) prepareVolumes(d DesiredReplica) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range d.Pod.Volumes {
		switch {
		case v.EmptyDir != nil:
			dir := filepath.Join(r.podDir(d.Workload, d.Index), "volumes", v.Name)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			_ = os.Chmod(dir, 0o777)
			if sc := d.Pod.SecurityContext; sc != nil && sc.FSGroup != nil {
				// As the kubelet: the group owns the volume, and new files
				// inherit it.
				if err := os.Chown(dir, -1, int(*sc.FSGroup)); err != nil {
					return nil, fmt.Errorf("volume %s: fsGroup: %w", v.Name, err)
				}
				_ = os.Chmod(dir, 0o777|os.ModeSetgid)
			}
			if v.EmptyDir.Medium == "Memory" && !isMountPoint(dir) {
				opts := "mode=1777"
				if v.EmptyDir.SizeLimit != nil {
					opts += fmt.Sprintf(",size=%d", v.EmptyDir.SizeLimit.Value())
				}
				if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
					return nil, fmt.Errorf("volume %s: mount tmpfs: %w", v.Name, err)
				}
			}
			out[v.Name] = dir
		case v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil:
			dir := filepath.Join(r.podDir(d.Workload, d.Index), "volumes", v.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			files, mode, err := projectedFiles(d, v)
			if v.DownwardAPI != nil {
				files, mode, err = r.downwardAPIFiles(d, v.DownwardAPI)
			}
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			if v.Secret != nil && !isMountPoint(dir) {
				// Secret files live in memory only.
				if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755"); err != nil {
					return nil, fmt.Errorf("volume %s: mount tmpfs: %w", v.Name, err)
				}
			}
			if err := writeFiles(dir, files, mode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			out[v.Name] = dir
		case v.HostPath != nil:
			p := v.HostPath.Path
			fi, err := os.Stat(p)
			switch v.HostPath.Type {
			case "DirectoryOrCreate":
				if err != nil {
					if err := os.MkdirAll(p, 0o755); err != nil {
						return nil, fmt.Errorf("volume %s: %w", v.Name, err)
					}
				}
			case "FileOrCreate":
				if err != nil {
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						return nil, fmt.Errorf("volume %s: %w", v.Name, err)
					}
					f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
					if err != nil {
						return nil, fmt.Errorf("volume %s: %w", v.Name, err)
					}
					f.Close()
				}
			case "Directory":
				if err != nil || !fi.IsDir() {
					return nil, fmt.Errorf("volume %s: hostPath %s is not a directory", v.Name, p)
				}
			case "File":
				if err != nil || !fi.Mode().IsRegular() {
					return nil, fmt.Errorf("volume %s: hostPath %s is not a file", v.Name, p)
				}
			case "Socket", "CharDevice", "BlockDevice":
				if err != nil {
					return nil, fmt.Errorf("volume %s: hostPath %s does not exist", v.Name, p)
				}
			default: // "": no check, like Kubernetes; a missing path is created by the bind mount's absence: make it a directory
				if err != nil {
					if err := os.MkdirAll(p, 0o755); err != nil {
						return nil, fmt.Errorf("volume %s: %w", v.Name, err)
					}
				}
			}
			out[v.Name] = p
		case v.PersistentVolumeClaim != nil:
			p, err := r.claimDir(d, v)
			if err != nil {
				return nil, &mountError{fmt.Errorf("volume %s: %w", v.Name, err)}
			}
			out[v.Name] = p
		}
	}
	return out, nil
}

// ReasonFailedMount is the status reason of a replica whose claim has no
// directory here (not bound yet, bound elsewhere, its data missing).
const ReasonFailedMount = "FailedMount"

type mountError struct{ err error }

func (e *mountError) Error() string { return e.err.Error() }
func (e *mountError) Unwrap() error { return e.err }

// claimDir is the directory of a persistentVolumeClaim volume's claim.
func (r *Reconciler) claimDir(d DesiredReplica, v manifest.Volume) (string, error) {
	c, ok := d.Claims[v.Name]
	switch {
	case !ok:
		return "", fmt.Errorf("claim %s: no binding given", v.PersistentVolumeClaim.ClaimName)
	case c.Err != "":
		return "", errors.New(c.Err)
	case r.cfg.Claims == nil:
		return "", fmt.Errorf("claim %s: this node has no volumes directory", c.Binding.Claim.Name)
	}
	return r.cfg.Claims.Dir(c.Binding)
}

func isMountPoint(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// addPodFiles mounts the replica's /etc/hosts, /etc/hostname and
// /etc/resolv.conf into spec, unless the container mounts something of
// its own there.
func (r *Reconciler) addPodFiles(d DesiredReplica, spec *ContainerSpec) error {
	mounts, err := r.podFiles(d, spec.Hostname)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if !slices.ContainsFunc(spec.Mounts, func(x Mount) bool { return x.Destination == m.Destination || x.Destination == "/etc" }) {
			spec.Mounts = append(spec.Mounts, m)
		}
	}
	sort.SliceStable(spec.Mounts, func(i, j int) bool { return spec.Mounts[i].Destination < spec.Mounts[j].Destination })
	return nil
}

// NetNSPath is where the network namespace of a replica is mounted.
func (r *Reconciler) NetNSPath(ref manifest.Ref, index int) string {
	return filepath.Join(r.netnsDir(), filepath.Base(r.podDir(ref, index)))
}

// cleanupPods removes the volume directories and network namespaces of
// replicas that are neither desired nor have containers left, including
// those an earlier agent left behind.
func (r *Reconciler) cleanupPods(ctx context.Context, desired []DesiredReplica, actual []Container) {
	keep := map[string]bool{}
	for _, d := range desired {
		keep[filepath.Base(r.podDir(d.Workload, d.Index))] = true
	}
	for _, c := range actual {
		k := containerKey(c)
		keep[filepath.Base(r.podDir(k.Workload, k.Index))] = true
	}
	// A replica with work in flight may be making containers this pass
	// did not list.
	for k := range r.workers.busyKeys() {
		keep[filepath.Base(r.podDir(k.Workload, k.Index))] = true
	}
	if nss, err := os.ReadDir(r.netnsDir()); err == nil {
		for _, e := range nss {
			if keep[e.Name()] {
				continue
			}
			p := filepath.Join(r.netnsDir(), e.Name())
			name := e.Name()
			if err := r.call(ctx, func(ctx context.Context) error { return r.teardownNetwork(ctx, name, p) }); err != nil {
				r.log.Warn("network teardown", "replica", e.Name(), "err", err)
				continue
			}
			if err := RemoveNetNS(p); err != nil {
				r.log.Warn("remove network namespace", "replica", e.Name(), "err", err)
				continue
			}
			r.forgetNetwork(e.Name())
			r.log.Info("removed network namespace", "replica", e.Name())
		}
	}
	root := filepath.Join(r.cfg.DataDir, "pods")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		dir := filepath.Join(root, e.Name())
		vols, _ := os.ReadDir(filepath.Join(dir, "volumes"))
		for _, v := range vols {
			p := filepath.Join(dir, "volumes", v.Name())
			if isMountPoint(p) {
				_ = unix.Unmount(p, unix.MNT_DETACH)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("remove replica volumes", "dir", dir, "err", err)
		}
	}
}

// containerSpec translates one container of a replica for the runtime.
func (r *Reconciler) containerSpec(d DesiredReplica, c manifest.Container, vols map[string]string) (ContainerSpec, error) {
	id := ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)
	grace := int64(30)
	if d.Pod.TerminationGracePeriodSeconds != nil {
		grace = *d.Pod.TerminationGracePeriodSeconds
	}
	logPath := containerlog.Path(r.cfg.DataDir, d.Workload.Namespace, d.Workload.Kind, d.Workload.Name, d.Index, c.Name)
	spec := ContainerSpec{
		ID: id,
		Labels: map[string]string{
			LabelWorkload:  d.Workload.Name,
			LabelNamespace: d.Workload.Namespace,
			LabelKind:      d.Workload.Kind,
			LabelReplica:   strconv.Itoa(d.Index),
			LabelContainer: c.Name,
			LabelSpecHash:  d.SpecHash,
			LabelNode:      r.cfg.Node,
			LabelRestarts:  "0",
			LabelGrace:     strconv.FormatInt(grace, 10),
			LabelLogPath:   logPath,
			LabelStartedAt: r.cfg.Now().UTC().Format(time.RFC3339),
		},
		Image:       c.Image,
		PullPolicy:  c.ImagePullPolicy,
		Command:     c.Command,
		Args:        c.Args,
		WorkingDir:  c.WorkingDir,
		HostNetwork: d.Pod.HostNetwork,
		HostPID:     d.Pod.HostPID,
		HostIPC:     d.Pod.HostIPC,
		LogPath:     logPath,
	}
	if !d.Pod.HostNetwork {
		spec.Hostname = d.Pod.Hostname
		if spec.Hostname == "" {
			spec.Hostname = podName(d)
		}
	}
	// The Services' variables, then envFrom, then env; later entries of
	// the same name win, as in Kubernetes.
	env, err := r.resolveEnv(d, c)
	if err != nil {
		return spec, err
	}
	if d.Pod.ServiceLinks() {
		env = append(append([][2]string(nil), d.ServiceEnv...), env...)
	}
	pos := map[string]int{}
	for _, e := range env {
		kv := e[0] + "=" + e[1]
		if i, ok := pos[e[0]]; ok {
			spec.Env[i] = kv
			continue
		}
		pos[e[0]] = len(spec.Env)
		spec.Env = append(spec.Env, kv)
	}
	if q, ok := c.Resources.Limits["memory"]; ok {
		spec.MemoryLimitBytes = q.Value()
	}
	if q, ok := c.Resources.Limits["cpu"]; ok {
		spec.CPUMilli = q.MilliValue()
	}
	if q, ok := c.Resources.Requests["cpu"]; ok {
		spec.CPUSharesMilli = q.MilliValue()
	}
	for _, m := range c.VolumeMounts {
		src, ok := vols[m.Name]
		if !ok {
			return spec, fmt.Errorf("container %s: volume %s not prepared", c.Name, m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
			if _, err := os.Stat(src); err != nil {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return spec, fmt.Errorf("container %s: subPath %s: %w", c.Name, m.SubPath, err)
				}
			}
		}
		ro := m.ReadOnly
		for _, v := range d.Pod.Volumes {
			if v.Name == m.Name && (v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil ||
				(v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly)) {
				ro = true // as Kubernetes mounts them
			}
		}
		spec.Mounts = append(spec.Mounts, Mount{Source: src, Destination: m.MountPath, ReadOnly: ro, Propagation: propagation(m.MountPropagation)})
	}
	// The termination message file, fresh for each container, unless a
	// volume is mounted there.
	if tpath, _ := c.TerminationMessage(); !mountsAt(spec.Mounts, tpath) {
		f := r.terminationFile(d, id)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return spec, fmt.Errorf("container %s: termination message: %w", c.Name, err)
		}
		if err := os.WriteFile(f, nil, 0o666); err != nil {
			return spec, fmt.Errorf("container %s: termination message: %w", c.Name, err)
		}
		_ = os.Chmod(f, 0o666)
		spec.Mounts = append(spec.Mounts, Mount{Source: f, Destination: tpath})
	}
	sort.SliceStable(spec.Mounts, func(i, j int) bool { return spec.Mounts[i].Destination < spec.Mounts[j].Destination })
	if l := c.Lifecycle; l != nil {
		for key, h := range map[string]*manifest.LifecycleHandler{LabelPostStart: l.PostStart, LabelPreStop: l.PreStop} {
			v, err := hookLabel(c, h)
			if err != nil {
				return spec, err
			}
			if v != "" {
				spec.Labels[key] = v
			}
		}
	}
	spec.Security = security(d.Pod.SecurityContext, c.SecurityContext)
	return spec, nil
}

// security merges the pod's and the container's securityContext; the
// container's fields win.
func security(pod *manifest.PodSecurityContext, c *manifest.SecurityContext) Security {
	var s Security
	if pod != nil {
		s.RunAsUser, s.RunAsGroup = pod.RunAsUser, pod.RunAsGroup
		s.RunAsNonRoot = pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
		if pod.FSGroup != nil {
			s.SupplementalGroups = []int64{*pod.FSGroup}
		}
		if pod.SeccompProfile != nil {
			s.Seccomp = pod.SeccompProfile.Type
		}
	}
	if c == nil {
		return s
	}
	if c.RunAsUser != nil {
		s.RunAsUser = c.RunAsUser
	}
	if c.RunAsGroup != nil {
		s.RunAsGroup = c.RunAsGroup
	}
	if c.RunAsNonRoot != nil {
		s.RunAsNonRoot = *c.RunAsNonRoot
	}
	if c.SeccompProfile != nil {
		s.Seccomp = c.SeccompProfile.Type
	}
	s.ReadOnlyRootFilesystem = c.ReadOnlyRootFilesystem != nil && *c.ReadOnlyRootFilesystem
	s.AllowPrivilegeEscalation = c.AllowPrivilegeEscalation
	s.Privileged = c.Privileged != nil && *c.Privileged
	if c.Capabilities != nil {
		s.CapAdd, s.CapDrop = c.Capabilities.Add, c.Capabilities.Drop
	}
	return s
}

// podName is a replica's metadata.name and default hostname
// (manifest.PodName).
func podName(d DesiredReplica) string { return manifest.PodName(d.Workload, d.Index) }

func mountsAt(ms []Mount, dest string) bool {
	for _, m := range ms {
		if m.Destination == dest {
			return true
		}
	}
	return false
}

// terminationFile is where container id's termination message is kept.
func (r *Reconciler) terminationFile(d DesiredReplica, id string) string {
	return filepath.Join(r.podDir(d.Workload, d.Index), "termination", id)
}

// maxTerminationMessage is Kubernetes' bound of one container's message.
const maxTerminationMessage = 4096

// terminationMessage is what container c of d (id) left as its message
// when it exited: its termination file, or with FallbackToLogsOnError
// and a failure, the tail of its log.
func (r *Reconciler) terminationMessage(d DesiredReplica, c manifest.Container, id string, exit int) string {
	_, policy := c.TerminationMessage()
	b := make([]byte, maxTerminationMessage)
	n := 0
	if f, err := os.Open(r.terminationFile(d, id)); err == nil {
		n, _ = io.ReadFull(f, b)
		f.Close()
	}
	msg := strings.TrimSpace(string(b[:n]))
	if msg == "" && policy == manifest.TerminationMessageFallback && exit != 0 {
		logPath := containerlog.Path(r.cfg.DataDir, d.Workload.Namespace, d.Workload.Kind, d.Workload.Name, d.Index, c.Name)
		if es, err := containerlog.Tail([]string{logPath}, 80); err == nil {
			var lines []string
			for _, e := range es {
				lines = append(lines, string(e.Text))
			}
			msg = strings.TrimSpace(strings.Join(lines, "\n"))
			if len(msg) > 2048 {
				msg = msg[len(msg)-2048:]
			}
		}
	}
	return msg
}

// Close stops the reconciler's background work (probes, replica
// workers), waiting for the workers at most a few seconds. Containers
// keep running; work cut short is done again by the next agent's passes.
// Safe to call twice.
func (r *Reconciler) Close() {
	r.workers.close()
	r.probes.close()
}

// propagation is the bind option of a volumeMount's mountPropagation.
func propagation(p string) string {
	switch p {
	case "HostToContainer":
		return "rslave"
	case "Bidirectional":
		return "rshared"
	}
	return ""
}
