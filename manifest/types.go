package manifest

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// The types below are the subset of the Kubernetes API that driftless
// understands. They carry json tags because sigs.k8s.io/yaml decodes through
// encoding/json. A field that is not declared here is rejected by Decode as
// "unknown field" (or "not supported by driftless" when it is a real
// Kubernetes field), so adding a field here is a promise to honour it.

// TypeMeta names the schema of a document.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata every document carries.
type ObjectMeta struct {
	Name string `json:"name,omitempty"`
	// GenerateName, for Jobs and Pods without a name, is the prefix of
	// one derived from the document's content (GeneratedName).
	GenerateName string            `json:"generateName,omitempty"`
	Namespace    string            `json:"namespace,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// LabelSelector selects objects by their labels.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one set-based selector term.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// Deployment is apps/v1 Deployment.
type Deployment struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     DeploymentSpec `json:"spec"`
}

// DeploymentSpec is the desired state of a Deployment.
type DeploymentSpec struct {
	Replicas                *int32             `json:"replicas,omitempty"`
	Selector                *LabelSelector     `json:"selector,omitempty"`
	Template                PodTemplateSpec    `json:"template"`
	Strategy                DeploymentStrategy `json:"strategy,omitempty"`
	MinReadySeconds         int32              `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit    *int32             `json:"revisionHistoryLimit,omitempty"`
	ProgressDeadlineSeconds *int32             `json:"progressDeadlineSeconds,omitempty"`
	Paused                  bool               `json:"paused,omitempty"`
}

// DeploymentStrategy is how replicas are replaced on a spec change.
type DeploymentStrategy struct {
	Type          string                   `json:"type,omitempty"` // RollingUpdate (default) or Recreate
	RollingUpdate *RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDeployment bounds a rolling update.
type RollingUpdateDeployment struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
}

// DaemonSet is apps/v1 DaemonSet.
type DaemonSet struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     DaemonSetSpec `json:"spec"`
}

// DaemonSetSpec is the desired state of a DaemonSet.
type DaemonSetSpec struct {
	Selector             *LabelSelector          `json:"selector,omitempty"`
	Template             PodTemplateSpec         `json:"template"`
	UpdateStrategy       DaemonSetUpdateStrategy `json:"updateStrategy,omitempty"`
	MinReadySeconds      int32                   `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit *int32                  `json:"revisionHistoryLimit,omitempty"`
}

// DaemonSetUpdateStrategy is how a DaemonSet replaces replicas.
type DaemonSetUpdateStrategy struct {
	Type          string                  `json:"type,omitempty"` // RollingUpdate (default) or OnDelete
	RollingUpdate *RollingUpdateDaemonSet `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDaemonSet bounds a DaemonSet rolling update.
type RollingUpdateDaemonSet struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
}

// ReplicaSet is apps/v1 ReplicaSet.
type ReplicaSet struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     ReplicaSetSpec `json:"spec"`
}

// ReplicaSetSpec is the desired state of a ReplicaSet.
type ReplicaSetSpec struct {
	Replicas        *int32          `json:"replicas,omitempty"`
	Selector        *LabelSelector  `json:"selector,omitempty"`
	Template        PodTemplateSpec `json:"template"`
	MinReadySeconds int32           `json:"minReadySeconds,omitempty"`
}

// ReplicationController is v1 ReplicationController, the ReplicaSet's
// predecessor (a selector of labels only, defaulting to the template's).
type ReplicationController struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta                `json:"metadata"`
	Spec     ReplicationControllerSpec `json:"spec"`
}

// ReplicationControllerSpec is the desired state of a ReplicationController.
type ReplicationControllerSpec struct {
	Replicas        *int32            `json:"replicas,omitempty"`
	Selector        map[string]string `json:"selector,omitempty"`
	Template        *PodTemplateSpec  `json:"template,omitempty"`
	MinReadySeconds int32             `json:"minReadySeconds,omitempty"`
}

// Job is batch/v1 Job.
type Job struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     JobSpec    `json:"spec"`
}

// JobSpec is the desired state of a Job.
type JobSpec struct {
	Parallelism             *int32          `json:"parallelism,omitempty"`
	Completions             *int32          `json:"completions,omitempty"`
	BackoffLimit            *int32          `json:"backoffLimit,omitempty"`
	ActiveDeadlineSeconds   *int64          `json:"activeDeadlineSeconds,omitempty"`
	TTLSecondsAfterFinished *int32          `json:"ttlSecondsAfterFinished,omitempty"`
	Selector                *LabelSelector  `json:"selector,omitempty"`
	ManualSelector          *bool           `json:"manualSelector,omitempty"`
	Template                PodTemplateSpec `json:"template"`
	// Suspend holds the Job: nothing runs until it is false again.
	Suspend *bool `json:"suspend,omitempty"`
}

// CronJob is batch/v1 CronJob: the leader starts a Job from JobTemplate at
// every time of Schedule.
type CronJob struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     CronJobSpec `json:"spec"`
}

// CronJobSpec is the desired state of a CronJob.
type CronJobSpec struct {
	// Schedule is a standard 5-field cron line or a descriptor (@hourly,
	// @daily, @every 1h30m, ...).
	Schedule string `json:"schedule"`
	// TimeZone is an IANA name the schedule is read in (default UTC).
	TimeZone *string `json:"timeZone,omitempty"`
	// StartingDeadlineSeconds: a run that cannot start within this many
	// seconds of its scheduled time is skipped.
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// ConcurrencyPolicy is Allow (default), Forbid or Replace.
	ConcurrencyPolicy          string          `json:"concurrencyPolicy,omitempty"`
	Suspend                    *bool           `json:"suspend,omitempty"`
	JobTemplate                JobTemplateSpec `json:"jobTemplate"`
	SuccessfulJobsHistoryLimit *int32          `json:"successfulJobsHistoryLimit,omitempty"`
	FailedJobsHistoryLimit     *int32          `json:"failedJobsHistoryLimit,omitempty"`
}

// JobTemplateSpec is the Job every run of a CronJob is made from.
type JobTemplateSpec struct {
	Metadata ObjectMeta `json:"metadata,omitempty"`
	Spec     JobSpec    `json:"spec"`
}

// Pod is v1 Pod: one replica, placed like a Deployment of one.
type Pod struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     PodSpec    `json:"spec"`
}

// ConfigMap is v1 ConfigMap.
type ConfigMap struct {
	TypeMeta   `json:",inline"`
	Metadata   ObjectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

// Secret is v1 Secret. Values never reach logs or the status branch.
type Secret struct {
	TypeMeta   `json:",inline"`
	Metadata   ObjectMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
	// Sealed is set when the Secret carries the annotation
	// driftless.dev/sealed: "age": each Data value is then an age
	// ciphertext, decrypted by the node only when a replica needs it.
	Sealed bool `json:"-"`
}

// Node is driftless's own node policy (apiVersion driftless.dev/v1): labels,
// taints and cordon for one node, so that they are commits too.
type Node struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     NodeSpec   `json:"spec"`
}

// NodeSpec is the policy for one node.
type NodeSpec struct {
	Labels        map[string]string `json:"labels,omitempty"`
	Unschedulable bool              `json:"unschedulable,omitempty"`
	Taints        []Taint           `json:"taints,omitempty"`
	// Removed deletes a node that is gone for good from the status branch.
	Removed bool `json:"removed,omitempty"`
}

// Taint repels replicas that do not tolerate it.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"` // NoSchedule, PreferNoSchedule, NoExecute
	// TimeAdded is when a NoExecute taint took effect: tolerations with
	// tolerationSeconds count from it. The leader records when it first
	// saw each NoExecute taint of a Node policy; a policy may set it.
	TimeAdded *time.Time `json:"timeAdded,omitempty"`
}

// TolerationEnd is when the replicas of spec stop tolerating the
// NoExecute taint: ok is false when they do not tolerate it at all, and
// end is zero when they tolerate it for ever. As Kubernetes' taint
// manager: the smallest tolerationSeconds of the matching tolerations,
// counted from the taint's TimeAdded (from added when it has none); a
// matching toleration without seconds counts only when no other has any.
func TolerationEnd(ts []Toleration, taint Taint, added time.Time) (end time.Time, ok bool) {
	var least *int64
	for _, t := range ts {
		if !t.Tolerates(taint) {
			continue
		}
		ok = true
		if t.TolerationSeconds != nil && (least == nil || *t.TolerationSeconds < *least) {
			least = t.TolerationSeconds
		}
	}
	if !ok || least == nil {
		return time.Time{}, ok
	}
	if taint.TimeAdded != nil {
		added = *taint.TimeAdded
	}
	secs := *least
	if secs < 0 {
		secs = 0
	}
	return added.Add(time.Duration(secs) * time.Second), true
}

// PodTemplateSpec is the template of every replica of a workload.
type PodTemplateSpec struct {
	Metadata ObjectMeta `json:"metadata,omitempty"`
	Spec     PodSpec    `json:"spec"`
}

// PodSpec is what one replica runs.
type PodSpec struct {
	// InitContainers run in order to completion before Containers start;
	// one with restartPolicy Always is a sidecar: started in order and
	// kept running.
	InitContainers                []Container         `json:"initContainers,omitempty"`
	Containers                    []Container         `json:"containers"`
	SecurityContext               *PodSecurityContext `json:"securityContext,omitempty"`
	Volumes                       []Volume            `json:"volumes,omitempty"`
	RestartPolicy                 string              `json:"restartPolicy,omitempty"` // Always, OnFailure, Never
	TerminationGracePeriodSeconds *int64              `json:"terminationGracePeriodSeconds,omitempty"`
	NodeSelector                  map[string]string   `json:"nodeSelector,omitempty"`
	HostNetwork                   bool                `json:"hostNetwork,omitempty"`
	Hostname                      string              `json:"hostname,omitempty"`
	// Tolerations let replicas land on (and stay on) tainted nodes.
	Tolerations []Toleration `json:"tolerations,omitempty"`
	// Affinity constrains and ranks nodes by their labels and by the
	// replicas already placed near them.
	Affinity *Affinity `json:"affinity,omitempty"`
	// TopologySpreadConstraints bound how unevenly matching replicas may
	// spread across topology domains.
	TopologySpreadConstraints []TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// ServiceAccountName (or the deprecated serviceAccount) names a
	// ServiceAccount of the commit, "default" when unset; no token is
	// mounted.
	ServiceAccountName           string `json:"serviceAccountName,omitempty"`
	DeprecatedServiceAccount     string `json:"serviceAccount,omitempty"`
	AutomountServiceAccountToken *bool  `json:"automountServiceAccountToken,omitempty"`
	// DNSPolicy is ClusterFirst when unset (see EffectiveDNSPolicy).
	DNSPolicy   string        `json:"dnsPolicy,omitempty"`
	DNSConfig   *PodDNSConfig `json:"dnsConfig,omitempty"`
	HostAliases []HostAlias   `json:"hostAliases,omitempty"`
	// Subdomain with Hostname gives the replica the DNS name
	// <hostname>.<subdomain>.<namespace>.svc.<domain> when a headless
	// Service named subdomain selects it.
	Subdomain string `json:"subdomain,omitempty"`
	// EnableServiceLinks (default true) gives the containers the
	// <SVC>_SERVICE_HOST and _PORT variables of the namespace's Services.
	EnableServiceLinks *bool `json:"enableServiceLinks,omitempty"`
	SetHostnameAsFQDN  *bool `json:"setHostnameAsFQDN,omitempty"`
	// HostPID and HostIPC share the host's process and IPC namespaces
	// (node agents: exporters, log shippers).
	HostPID bool `json:"hostPID,omitempty"`
	HostIPC bool `json:"hostIPC,omitempty"`
	// ShareProcessNamespace puts the pod's containers in one PID
	// namespace, whose PID 1 is a pause process.
	ShareProcessNamespace *bool `json:"shareProcessNamespace,omitempty"`
	// OS is the operating system the pod needs: linux only.
	OS *PodOS `json:"os,omitempty"`
	// PriorityClassName names a PriorityClass of the commit or a built-in
	// one (system-cluster-critical, system-node-critical).
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// RuntimeClassName names a RuntimeClass of the commit: its handler is
	// the containerd runtime of the replicas' containers.
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
	// SchedulerName must be default-scheduler (or empty): driftless
	// places every replica itself.
	SchedulerName string `json:"schedulerName,omitempty"`
	// Priority is what Kubernetes' admission writes from the class; the
	// class's value is what counts (a different one is a warning).
	Priority *int32 `json:"priority,omitempty"`
	// PreemptionPolicy Never keeps the replicas from preempting others
	// (default: the class's).
	PreemptionPolicy *string `json:"preemptionPolicy,omitempty"`
	// NodeName binds every replica to that node, as Kubernetes does
	// without its scheduler: no filter but the node being known, alive
	// and having room.
	NodeName string `json:"nodeName,omitempty"`
	// ImagePullSecrets name Secrets of the commit (type
	// kubernetes.io/dockerconfigjson) whose credentials this pod's image
	// pulls use, before --registry-config's.
	ImagePullSecrets []LocalObjectReference `json:"imagePullSecrets,omitempty"`
}

// LocalObjectReference names an object of the same namespace.
type LocalObjectReference struct {
	Name string `json:"name,omitempty"`
}

// PodOS is spec.os.
type PodOS struct {
	Name string `json:"name"`
}

// DNS policies, as Kubernetes names them.
const (
	DNSClusterFirst            = "ClusterFirst"
	DNSClusterFirstWithHostNet = "ClusterFirstWithHostNet"
	DNSDefault                 = "Default"
	DNSNone                    = "None"
)

// PodDNSConfig is what dnsConfig adds to (or, with dnsPolicy None, is) a
// replica's resolv.conf.
type PodDNSConfig struct {
	Nameservers []string             `json:"nameservers,omitempty"`
	Searches    []string             `json:"searches,omitempty"`
	Options     []PodDNSConfigOption `json:"options,omitempty"`
}

// PodDNSConfigOption is one resolv.conf option (ndots: 2, edns0).
type PodDNSConfigOption struct {
	Name  string  `json:"name,omitempty"`
	Value *string `json:"value,omitempty"`
}

// HostAlias is one line added to a replica's /etc/hosts.
type HostAlias struct {
	IP        string   `json:"ip"`
	Hostnames []string `json:"hostnames,omitempty"`
}

// ServiceAccount is the ServiceAccount the replica runs as.
func (s *PodSpec) ServiceAccount() string {
	switch {
	case s.ServiceAccountName != "":
		return s.ServiceAccountName
	case s.DeprecatedServiceAccount != "":
		return s.DeprecatedServiceAccount
	}
	return "default"
}

// EffectiveDNSPolicy is the DNS policy in force: ClusterFirst by default;
// ClusterFirst on the host network means Default, as in Kubernetes.
func (s *PodSpec) EffectiveDNSPolicy() string {
	p := s.DNSPolicy
	if p == "" {
		p = DNSClusterFirst
	}
	if p == DNSClusterFirst && s.HostNetwork {
		return DNSDefault
	}
	if p == DNSClusterFirstWithHostNet {
		return DNSClusterFirst
	}
	return p
}

// ServiceLinks reports whether Service environment variables are given.
func (s *PodSpec) ServiceLinks() bool { return s.EnableServiceLinks == nil || *s.EnableServiceLinks }

// Toleration lets a replica ignore a taint that matches it.
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"` // Equal (default) or Exists
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"` // empty: every effect
	// TolerationSeconds bounds a NoExecute toleration in Kubernetes;
	// here it holds without a time limit (a warning says so, except for
	// the node.kubernetes.io/ taints driftless never sets).
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

// Tolerates reports whether the toleration matches the taint, as
// Kubernetes defines it: an empty key with Exists matches every taint, an
// empty effect matches every effect.
func (t Toleration) Tolerates(taint Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "Exists":
		return true
	case "", "Equal":
		return t.Value == taint.Value
	}
	return false
}

// Affinity groups the node and inter-replica affinity rules of a replica.
type Affinity struct {
	NodeAffinity    *NodeAffinity `json:"nodeAffinity,omitempty"`
	PodAffinity     *PodAffinity  `json:"podAffinity,omitempty"`
	PodAntiAffinity *PodAffinity  `json:"podAntiAffinity,omitempty"`
}

// NodeAffinity is a required node selector (checked when a replica is
// placed, not while it runs) and weighted preferences.
type NodeAffinity struct {
	Required  *NodeSelector             `json:"requiredDuringSchedulingIgnoredDuringExecution,omitempty"`
	Preferred []PreferredSchedulingTerm `json:"preferredDuringSchedulingIgnoredDuringExecution,omitempty"`
}

// NodeSelector matches a node when any of its terms does.
type NodeSelector struct {
	NodeSelectorTerms []NodeSelectorTerm `json:"nodeSelectorTerms"`
}

// NodeSelectorTerm matches a node when all its requirements do; an empty
// term matches no node.
type NodeSelectorTerm struct {
	MatchExpressions []NodeSelectorRequirement `json:"matchExpressions,omitempty"`
	MatchFields      []NodeSelectorRequirement `json:"matchFields,omitempty"`
}

// NodeSelectorRequirement compares a node label (or, in matchFields, the
// field metadata.name) with values: In, NotIn, Exists, DoesNotExist, Gt,
// Lt.
type NodeSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// PreferredSchedulingTerm adds Weight (1..100) to the nodes its
// preference matches.
type PreferredSchedulingTerm struct {
	Weight     int32            `json:"weight"`
	Preference NodeSelectorTerm `json:"preference"`
}

// PodAffinity is the shape shared by podAffinity and podAntiAffinity:
// required terms (checked when a replica is placed) and weighted ones.
type PodAffinity struct {
	Required  []PodAffinityTerm         `json:"requiredDuringSchedulingIgnoredDuringExecution,omitempty"`
	Preferred []WeightedPodAffinityTerm `json:"preferredDuringSchedulingIgnoredDuringExecution,omitempty"`
}

// PodAffinityTerm selects replicas by labels within namespaces (empty:
// the replica's own) and names the node label that defines "near".
type PodAffinityTerm struct {
	LabelSelector *LabelSelector `json:"labelSelector,omitempty"`
	Namespaces    []string       `json:"namespaces,omitempty"`
	TopologyKey   string         `json:"topologyKey"`
}

// WeightedPodAffinityTerm is a preferred term with a weight 1..100.
type WeightedPodAffinityTerm struct {
	Weight          int32           `json:"weight"`
	PodAffinityTerm PodAffinityTerm `json:"podAffinityTerm"`
}

// TopologySpreadConstraint bounds the difference in matching replicas
// between the domains of TopologyKey.
type TopologySpreadConstraint struct {
	MaxSkew           int32          `json:"maxSkew"`
	TopologyKey       string         `json:"topologyKey"`
	WhenUnsatisfiable string         `json:"whenUnsatisfiable"` // DoNotSchedule or ScheduleAnyway
	LabelSelector     *LabelSelector `json:"labelSelector,omitempty"`
}

// Container is one process of a replica.
type Container struct {
	Name            string               `json:"name"`
	Image           string               `json:"image"`
	Command         []string             `json:"command,omitempty"`
	Args            []string             `json:"args,omitempty"`
	WorkingDir      string               `json:"workingDir,omitempty"`
	Env             []EnvVar             `json:"env,omitempty"`
	EnvFrom         []EnvFromSource      `json:"envFrom,omitempty"`
	Ports           []ContainerPort      `json:"ports,omitempty"`
	Resources       ResourceRequirements `json:"resources,omitempty"`
	VolumeMounts    []VolumeMount        `json:"volumeMounts,omitempty"`
	ImagePullPolicy string               `json:"imagePullPolicy,omitempty"` // Always, IfNotPresent, Never
	LivenessProbe   *Probe               `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe               `json:"readinessProbe,omitempty"`
	StartupProbe    *Probe               `json:"startupProbe,omitempty"`
	Lifecycle       *Lifecycle           `json:"lifecycle,omitempty"`
	SecurityContext *SecurityContext     `json:"securityContext,omitempty"`
	// RestartPolicy is only for init containers: Always makes a sidecar.
	RestartPolicy string `json:"restartPolicy,omitempty"`
	// TerminationMessagePath is the file in the container whose content
	// (at most 4096 bytes) is the message of its last exit in status
	// (default /dev/termination-log); with TerminationMessagePolicy
	// FallbackToLogsOnError, a failed container with an empty file gives
	// the tail of its log instead.
	TerminationMessagePath   string `json:"terminationMessagePath,omitempty"`
	TerminationMessagePolicy string `json:"terminationMessagePolicy,omitempty"`
	// Stdin, StdinOnce and TTY are accepted with a warning: nothing is
	// attached (a process that waits on its stdin sees it closed).
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	TTY       bool `json:"tty,omitempty"`
}

// Termination message defaults, as Kubernetes sets them.
const (
	DefaultTerminationMessagePath = "/dev/termination-log"
	TerminationMessageFile        = "File"
	TerminationMessageFallback    = "FallbackToLogsOnError"
)

// TerminationMessage is the container's termination message file and
// policy, defaulted.
func (c *Container) TerminationMessage() (path, policy string) {
	path, policy = c.TerminationMessagePath, c.TerminationMessagePolicy
	if path == "" {
		path = DefaultTerminationMessagePath
	}
	if policy == "" {
		policy = TerminationMessageFile
	}
	return path, policy
}

// Probe checks a container: liveness (restart it when failing), readiness
// (the replica is ready only when passing), startup (gates the other two).
type Probe struct {
	ProbeHandler                  `json:",inline"`
	InitialDelaySeconds           int32  `json:"initialDelaySeconds,omitempty"`
	TimeoutSeconds                int32  `json:"timeoutSeconds,omitempty"`   // default 1
	PeriodSeconds                 int32  `json:"periodSeconds,omitempty"`    // default 10
	SuccessThreshold              int32  `json:"successThreshold,omitempty"` // default 1
	FailureThreshold              int32  `json:"failureThreshold,omitempty"` // default 3
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// ProbeHandler is one way of checking: exactly one field is set.
type ProbeHandler struct {
	Exec      *ExecAction      `json:"exec,omitempty"`
	HTTPGet   *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC      *GRPCAction      `json:"grpc,omitempty"`
}

// ExecAction runs a command in the container; exit 0 is success.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// HTTPGetAction is an HTTP GET; a status in [200, 400) is success.
type HTTPGetAction struct {
	Path        string       `json:"path,omitempty"`
	Port        IntOrString  `json:"port"`
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"` // HTTP (default) or HTTPS, certificate not checked
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one header of an HTTP probe.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction succeeds when a TCP connection opens.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
	Host string      `json:"host,omitempty"`
}

// GRPCAction calls grpc.health.v1.Health/Check; SERVING is success.
type GRPCAction struct {
	Port    int32   `json:"port"`
	Service *string `json:"service,omitempty"`
}

// Lifecycle hooks run after a container starts and before it is stopped.
type Lifecycle struct {
	PostStart *LifecycleHandler `json:"postStart,omitempty"`
	PreStop   *LifecycleHandler `json:"preStop,omitempty"`
}

// LifecycleHandler is a hook: exactly one of exec and httpGet.
type LifecycleHandler struct {
	Exec    *ExecAction    `json:"exec,omitempty"`
	HTTPGet *HTTPGetAction `json:"httpGet,omitempty"`
}

// SecurityContext is a container's security settings; set fields win over
// the pod's.
type SecurityContext struct {
	RunAsUser                *int64          `json:"runAsUser,omitempty"`
	RunAsGroup               *int64          `json:"runAsGroup,omitempty"`
	RunAsNonRoot             *bool           `json:"runAsNonRoot,omitempty"`
	ReadOnlyRootFilesystem   *bool           `json:"readOnlyRootFilesystem,omitempty"`
	AllowPrivilegeEscalation *bool           `json:"allowPrivilegeEscalation,omitempty"`
	Privileged               *bool           `json:"privileged,omitempty"`
	Capabilities             *Capabilities   `json:"capabilities,omitempty"`
	SeccompProfile           *SeccompProfile `json:"seccompProfile,omitempty"`
}

// PodSecurityContext is the security settings of every container of a
// replica.
type PodSecurityContext struct {
	RunAsUser      *int64          `json:"runAsUser,omitempty"`
	RunAsGroup     *int64          `json:"runAsGroup,omitempty"`
	RunAsNonRoot   *bool           `json:"runAsNonRoot,omitempty"`
	FSGroup        *int64          `json:"fsGroup,omitempty"`
	SeccompProfile *SeccompProfile `json:"seccompProfile,omitempty"`
}

// Capabilities added to and dropped from the default set (names without
// the CAP_ prefix; ALL drops every one).
type Capabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// SeccompProfile is RuntimeDefault or Unconfined.
type SeccompProfile struct {
	Type string `json:"type"`
}

// EnvVar is one environment variable: a plain value or one taken from a
// ConfigMap, a Secret, the replica's fields or its resources.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource says where an environment variable's value comes from.
type EnvVarSource struct {
	ConfigMapKeyRef  *KeySelector           `json:"configMapKeyRef,omitempty"`
	SecretKeyRef     *KeySelector           `json:"secretKeyRef,omitempty"`
	FieldRef         *ObjectFieldSelector   `json:"fieldRef,omitempty"`
	ResourceFieldRef *ResourceFieldSelector `json:"resourceFieldRef,omitempty"`
}

// KeySelector names one key of a ConfigMap or Secret of the same namespace.
type KeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// ObjectFieldSelector selects a field of the replica: metadata.name,
// metadata.namespace, metadata.labels['k'], metadata.annotations['k'],
// spec.nodeName, spec.serviceAccountName, status.podIP, status.hostIP.
type ObjectFieldSelector struct {
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath"`
}

// ResourceFieldSelector selects a container's limit or request.
type ResourceFieldSelector struct {
	ContainerName string             `json:"containerName,omitempty"`
	Resource      string             `json:"resource"`
	Divisor       *resource.Quantity `json:"divisor,omitempty"`
}

// EnvFromSource imports every key of a ConfigMap or Secret.
type EnvFromSource struct {
	Prefix       string          `json:"prefix,omitempty"`
	ConfigMapRef *LocalObjectRef `json:"configMapRef,omitempty"`
	SecretRef    *LocalObjectRef `json:"secretRef,omitempty"`
}

// LocalObjectRef names a ConfigMap or Secret of the same namespace.
type LocalObjectRef struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

// ContainerPort is a port a container listens on.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	HostPort      int32  `json:"hostPort,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
	Protocol      string `json:"protocol,omitempty"` // TCP (default), UDP, SCTP
}

// ResourceRequirements are requests (for placement) and limits (cgroups).
type ResourceRequirements struct {
	Limits   ResourceList `json:"limits,omitempty"`
	Requests ResourceList `json:"requests,omitempty"`
}

// ResourceList maps a resource name (cpu, memory, ...) to a quantity.
type ResourceList map[string]resource.Quantity

// VolumeMount mounts a volume of the replica into a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	SubPath   string `json:"subPath,omitempty"`
	// SubPathExpr is SubPath with $(VAR) expanded from the container's
	// environment (e.g. a pod name from the downward API).
	SubPathExpr string `json:"subPathExpr,omitempty"`
	// MountPropagation is None (default), HostToContainer (mounts the
	// host makes below the path appear in the container) or
	// Bidirectional (and back; privileged containers only).
	MountPropagation string `json:"mountPropagation,omitempty"`
}

// Volume is storage shared by the containers of one replica.
type Volume struct {
	Name     string                `json:"name"`
	EmptyDir *EmptyDirVolumeSource `json:"emptyDir,omitempty"`
	HostPath *HostPathVolumeSource `json:"hostPath,omitempty"`
	// ConfigMap and Secret volumes hold one file per key (or per item);
	// Secret files live on tmpfs.
	ConfigMap *ConfigMapVolumeSource `json:"configMap,omitempty"`
	Secret    *SecretVolumeSource    `json:"secret,omitempty"`
	// DownwardAPI volumes hold one file per item: a field of the replica
	// or a container's limit or request.
	DownwardAPI *DownwardAPIVolumeSource `json:"downwardAPI,omitempty"`
	// PersistentVolumeClaim mounts the directory a claim is bound to on
	// the node (or, for a StatefulSet's claim template, the claim of the
	// replica's ordinal).
	PersistentVolumeClaim *PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
	// Projected puts the files of several ConfigMaps, Secrets and
	// downward API items into one directory (on tmpfs when a Secret is
	// among them); a serviceAccountToken source writes nothing (there is
	// no API server to issue one).
	Projected *ProjectedVolumeSource `json:"projected,omitempty"`
	// Ephemeral is a claim that lives as long as its replica: a
	// directory of the node's, like an emptyDir on disk.
	Ephemeral *EphemeralVolumeSource `json:"ephemeral,omitempty"`
}

// EphemeralVolumeSource is a generic ephemeral volume's claim template.
type EphemeralVolumeSource struct {
	VolumeClaimTemplate *ClaimTemplate `json:"volumeClaimTemplate,omitempty"`
}

// ProjectedVolumeSource is a projected volume's sources.
type ProjectedVolumeSource struct {
	Sources     []VolumeProjection `json:"sources"`
	DefaultMode *int32             `json:"defaultMode,omitempty"`
}

// VolumeProjection is one source of a projected volume: exactly one of
// its fields.
type VolumeProjection struct {
	ConfigMap           *ConfigMapProjection           `json:"configMap,omitempty"`
	Secret              *SecretProjection              `json:"secret,omitempty"`
	DownwardAPI         *DownwardAPIProjection         `json:"downwardAPI,omitempty"`
	ServiceAccountToken *ServiceAccountTokenProjection `json:"serviceAccountToken,omitempty"`
}

// ConfigMapProjection is a ConfigMap's keys in a projected volume.
type ConfigMapProjection struct {
	Name     string      `json:"name"`
	Items    []KeyToPath `json:"items,omitempty"`
	Optional *bool       `json:"optional,omitempty"`
}

// SecretProjection is a Secret's keys in a projected volume.
type SecretProjection struct {
	Name     string      `json:"name"`
	Items    []KeyToPath `json:"items,omitempty"`
	Optional *bool       `json:"optional,omitempty"`
}

// DownwardAPIProjection is downward API items in a projected volume.
type DownwardAPIProjection struct {
	Items []DownwardAPIVolumeFile `json:"items,omitempty"`
}

// ServiceAccountTokenProjection asks for a token file; none is written.
type ServiceAccountTokenProjection struct {
	Audience          string `json:"audience,omitempty"`
	ExpirationSeconds *int64 `json:"expirationSeconds,omitempty"`
	Path              string `json:"path"`
}

// PersistentVolumeClaimVolumeSource names a claim of the same namespace.
type PersistentVolumeClaimVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// DownwardAPIVolumeSource projects fields of the replica into files.
type DownwardAPIVolumeSource struct {
	Items       []DownwardAPIVolumeFile `json:"items,omitempty"`
	DefaultMode *int32                  `json:"defaultMode,omitempty"`
}

// DownwardAPIVolumeFile is one file of a downwardAPI volume: exactly one of
// FieldRef and ResourceFieldRef.
type DownwardAPIVolumeFile struct {
	Path             string                 `json:"path"`
	FieldRef         *ObjectFieldSelector   `json:"fieldRef,omitempty"`
	ResourceFieldRef *ResourceFieldSelector `json:"resourceFieldRef,omitempty"`
	Mode             *int32                 `json:"mode,omitempty"`
}

// KeyToPath projects one key to a file path in the volume.
type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode,omitempty"`
}

// ConfigMapVolumeSource projects a ConfigMap into a volume.
type ConfigMapVolumeSource struct {
	Name        string      `json:"name"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// SecretVolumeSource projects a Secret into a volume (on tmpfs).
type SecretVolumeSource struct {
	SecretName  string      `json:"secretName"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// EmptyDirVolumeSource is a scratch directory that lives as long as the replica.
type EmptyDirVolumeSource struct {
	Medium    string             `json:"medium,omitempty"` // "" (disk) or Memory (tmpfs)
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
}

// HostPathVolumeSource is a path of the host.
type HostPathVolumeSource struct {
	Path string `json:"path"`
	Type string `json:"type,omitempty"`
}
