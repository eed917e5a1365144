package reconcile

import (
	"context"
	"errors"
	"time"
)

// Labels every container driftless owns carries. A container without all of
// LabelWorkload, LabelKind, LabelReplica, LabelContainer and LabelSpecHash is
// not driftless's and is never touched.
const (
	LabelWorkload  = "driftless.dev/workload"
	LabelNamespace = "driftless.dev/namespace"
	LabelKind      = "driftless.dev/kind"
	LabelReplica   = "driftless.dev/replica"
	LabelContainer = "driftless.dev/container"
	LabelSpecHash  = "driftless.dev/spec-hash"
	LabelNode      = "driftless.dev/node"
	LabelRestarts  = "driftless.dev/restarts"
	// LabelPIDNS names the process namespace a container shares with the
	// other containers of its replica (shareProcessNamespace).
	LabelPIDNS = "driftless.dev/pidns"
)

// Container states as the runtime reports them.
type State string

const (
	StateCreated State = "created" // container exists, no task has run
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Errors a Runtime returns; callers use errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrImageNotFound = errors.New("image not found")
	ErrUnavailable   = errors.New("runtime unavailable")
	// ErrInvalidSpec: the container cannot be created as specified (for
	// example runAsNonRoot with an image that runs as root).
	ErrInvalidSpec = errors.New("invalid container spec")
)

// Container is one owned container as the runtime sees it.
type Container struct {
	ID     string
	Labels map[string]string
	State  State
	// ExitCode and FinishedAt are set when State is StateExited.
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
}

// Mount is a bind or tmpfs mount into a container.
type Mount struct {
	Source      string // host path; empty for tmpfs
	Destination string
	ReadOnly    bool
	Tmpfs       bool
	// Propagation is the bind's mount propagation: "" (rprivate),
	// "rslave" (HostToContainer) or "rshared" (Bidirectional).
	Propagation string
}

// ContainerSpec is everything the runtime needs to create one container.
// Command and Args follow Kubernetes: Command replaces the image's
// entrypoint, Args its cmd; the runtime resolves them against the image.
type ContainerSpec struct {
	ID         string
	Labels     map[string]string
	Image      string // normalised reference
	PullPolicy string // Always, IfNotPresent, Never
	Command    []string
	Args       []string
	Env        []string // KEY=value, appended to the image's env
	WorkingDir string
	Mounts     []Mount
	// HostNetwork shares the host's network namespace. Otherwise the
	// container joins the namespace mounted at NetNSPath (shared by the
	// containers of one replica), or gets one of its own when it is empty.
	HostNetwork bool
	NetNSPath   string
	// HostPID and HostIPC share the host's process and IPC namespaces.
	HostPID, HostIPC bool
	// SharePIDNamespace names the process namespace the containers of
	// one replica share (shareProcessNamespace), held by a pause process
	// the runtime keeps while any container joins it; "" for a namespace
	// of the container's own.
	SharePIDNamespace string
	// Runtime is the containerd runtime (io.containerd.runc.v2, ...);
	// empty for the default.
	Runtime  string
	Hostname string
	// Limits; zero means none.
	MemoryLimitBytes int64
	CPUMilli         int64 // limit in millicores (CFS quota)
	CPUSharesMilli   int64 // request in millicores (cpu.shares)
	// LogPath receives the container's stdout and stderr.
	LogPath string
	// Security is the container's securityContext merged with the pod's.
	Security Security
}

// Security is what a container runs as and may do.
type Security struct {
	RunAsUser, RunAsGroup *int64
	// RunAsNonRoot refuses to create the container when it would run as
	// uid 0 (the image's user when RunAsUser is not set).
	RunAsNonRoot bool
	// SupplementalGroups are added to the process's groups (fsGroup).
	SupplementalGroups     []int64
	ReadOnlyRootFilesystem bool
	// AllowPrivilegeEscalation unset means allowed, as in Kubernetes.
	AllowPrivilegeEscalation *bool
	Privileged               bool
	// CapAdd and CapDrop are capability names without CAP_; "ALL" in
	// CapDrop drops every capability before CapAdd is applied.
	CapAdd, CapDrop []string
	// Seccomp is "", RuntimeDefault or Unconfined ("" is Unconfined, as
	// the kubelet's default).
	Seccomp string
}

// Execer runs a command inside a running container: exec probes and
// lifecycle hooks. Safe for concurrent use.
type Execer interface {
	// Exec runs cmd in the container's namespaces with its process
	// settings and returns the exit code and the first few KiB of its
	// combined output. When ctx ends first, the process is killed and
	// ctx's error returned.
	Exec(ctx context.Context, id string, cmd []string) (exitCode int, output []byte, err error)
}

// Runtime runs containers. Implementations must be safe for concurrent use
// and every method must be idempotent where its doc says so. List returns
// only containers carrying driftless's ownership labels.
type Runtime interface {
	// List returns the owned containers with their task state.
	List(ctx context.Context) ([]Container, error)
	// EnsureImage makes the image available locally according to the pull
	// policy (importing from the images dir or pulling). Returns an error
	// wrapping ErrImageNotFound when it cannot be had.
	EnsureImage(ctx context.Context, ref, pullPolicy string) error
	// Create creates the container (no task). Idempotent on ID.
	Create(ctx context.Context, spec ContainerSpec) error
	// Start starts a new task for the container, deleting any exited task
	// first. Starting a running container is a no-op.
	Start(ctx context.Context, id string) error
	// Stop sends SIGTERM, waits up to grace, then SIGKILLs. Stopping a
	// stopped container is a no-op.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove stops (with grace 0) and deletes the container and its
	// snapshot. Removing a missing container returns nil.
	Remove(ctx context.Context, id string) error
	// SetLabels merges labels into the container's labels.
	SetLabels(ctx context.Context, id string, labels map[string]string) error
}
