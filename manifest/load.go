package manifest

import (
	"k8s.io/apimachinery/pkg/util/validation"

	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"

	"driftless.dev/driftless/internal/sealed"
)

// Workload is a workload of the desired state, normalised: whatever its
// kind, a number of replicas of one defaulted pod template.
type Workload struct {
	Ref
	File string
	Line int
	// Replicas is the desired replica count (Job: min(parallelism,
	// completions) before the leader's Job controller decides how many
	// run); unused when PerNode is set.
	Replicas int
	// Indexes, when set, are the replica indexes to place instead of
	// 0..Replicas-1: a Job's active replicas, whose indexes grow as
	// failed replicas are replaced.
	Indexes []int
	// PerNode places one replica on every feasible node (DaemonSet).
	PerNode bool
	// Template is the defaulted pod template every replica runs.
	Template PodTemplateSpec
	// SpecHash is a stable hash of Template: it changes when and only when
	// what a replica runs changes.
	SpecHash string
	// Job is set for Jobs (defaulted).
	Job *JobSpec
	// Rollout is how a changed template replaces the replicas of a
	// Deployment or DaemonSet (defaulted); nil replaces them all at once.
	Rollout *RolloutSpec
	// ConfigMaps and Secrets are those of the commit the template refers
	// to (env, envFrom, volumes), by name. Their content is part of
	// SpecHash, so a change to one replaces the replicas that use it.
	ConfigMaps map[string]ConfigMap `json:"-"`
	Secrets    map[string]Secret    `json:"-"`
	// MissingServiceAccount names the ServiceAccount the template runs as
	// when the commit lacks it: the replicas stay Pending.
	MissingServiceAccount string `json:"-"`
	// Stateful is set for StatefulSets (ordinals, pod management,
	// partition); their replica indexes are their ordinals.
	Stateful *StatefulSpec `json:"-"`
	// ClaimTemplates are a StatefulSet's volumeClaimTemplates by name,
	// Claims the claims of the commit its persistentVolumeClaim volumes
	// name (a missing one is absent); see ReplicaClaims.
	ClaimTemplates map[string]Claim `json:"-"`
	Claims         map[string]Claim `json:"-"`
	// Priority is the value of the template's PriorityClass (the global
	// default's, or 0): higher priorities are placed first, and preempt
	// lower ones that keep them from fitting unless PreemptNever.
	Priority     int32 `json:"-"`
	PreemptNever bool  `json:"-"`

	doc            *document
	specField      string
	claimTemplates map[string]pendingClaim
}

// Set is one desired commit, decoded and validated.
type Set struct {
	Workloads  []Workload
	CronJobs   []CronJobDef
	ConfigMaps []ConfigMap
	Secrets    []Secret
	Services   []Service
	// ServiceAccounts are names pods may run as (no token is mounted).
	ServiceAccounts []ServiceAccount
	// Claims are the PersistentVolumeClaim documents, StorageClasses the
	// classes they may name.
	Claims         []Claim
	StorageClasses []StorageClass
	// PriorityClasses give workloads their Priority.
	PriorityClasses []PriorityClass
	// Budgets are the PodDisruptionBudgets.
	Budgets  []Budget
	Nodes    []Node
	Skipped  []Skipped
	Warnings []Problem

	opts      LoadOptions
	claimDocs []pendingClaim
}

// Workload returns the workload named by ref.
func (s *Set) Workload(ref Ref) (*Workload, bool) {
	i := sort.Search(len(s.Workloads), func(i int) bool { return !refLess(s.Workloads[i].Ref, ref) })
	if i < len(s.Workloads) && s.Workloads[i].Ref == ref {
		return &s.Workloads[i], true
	}
	return nil, false
}

func refLess(a, b Ref) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}

// notHandled are Kubernetes kinds driftless recognises and does not apply.
var notHandled = map[string]string{
	"Ingress":                        "ingress is not handled by driftless",
	"IngressClass":                   "ingress is not handled by driftless",
	"NetworkPolicy":                  "network policies are not handled by driftless",
	"Endpoints":                      "service endpoints are not handled by driftless",
	"EndpointSlice":                  "service endpoints are not handled by driftless",
	"PersistentVolume":               "persistent volumes are not handled by driftless",
	"Role":                           "there is no Kubernetes API to authorise",
	"RoleBinding":                    "there is no Kubernetes API to authorise",
	"ClusterRole":                    "there is no Kubernetes API to authorise",
	"ClusterRoleBinding":             "there is no Kubernetes API to authorise",
	"Namespace":                      "namespaces exist implicitly in driftless",
	"HorizontalPodAutoscaler":        "autoscaling is not handled by driftless",
	"LimitRange":                     "admission policies are not handled by driftless",
	"ResourceQuota":                  "admission policies are not handled by driftless",
	"CustomResourceDefinition":       "custom resources are not handled by driftless",
	"MutatingWebhookConfiguration":   "admission webhooks are not handled by driftless",
	"ValidatingWebhookConfiguration": "admission webhooks are not handled by driftless",
}

// ReadDir reads every *.yaml/*.yml file below root (skipping .git), and
// Chart.yaml and kustomization files so that Load can report them.
func ReadDir(root string) ([]File, error) {
	var out []File
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		b, err := os.ReadFile(root)
		if err != nil {
			return nil, err
		}
		return []File{{Path: filepath.ToSlash(root), Data: b}}, nil
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !IsManifestPath(d.Name()) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, File{Path: filepath.ToSlash(rel), Data: b})
		return nil
	})
	return out, err
}

// IsManifestPath reports whether a file name is read as manifests.
func IsManifestPath(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// LoadOptions are the policies a commit is validated under.
type LoadOptions struct {
	// RequireSealedSecrets makes a Secret that is not sealed (plain
	// values in Git) a problem of the commit instead of a warning.
	RequireSealedSecrets bool
}

// Load decodes and validates every file of a desired commit. The commit is
// taken whole or not at all: when anything is invalid, Load returns nil
// and Errors listing every problem of every file.
func Load(files []File) (*Set, error) { return LoadWith(files, LoadOptions{}) }

// LoadWith is Load under opts.
func LoadWith(files []File, opts LoadOptions) (*Set, error) {
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	set := &Set{opts: opts}
	var problems []Problem

	// Helm charts are skipped whole; kustomizations are reported.
	charts := map[string]bool{}
	for _, f := range files {
		base := path.Base(f.Path)
		if base == "Chart.yaml" || base == "Chart.yml" {
			dir := path.Dir(f.Path)
			charts[dir] = true
			set.Skipped = append(set.Skipped, Skipped{File: f.Path, Reason: "Helm chart in " + dir + "/ not rendered: driftless applies plain manifests only (render it with `helm template` and commit the output)"})
		}
	}
	inChart := func(p string) bool {
		for d := path.Dir(p); ; d = path.Dir(d) {
			if charts[d] {
				return true
			}
			if d == "." || d == "/" {
				return false
			}
		}
	}

	seen := map[string]string{}
	for _, f := range files {
		base := path.Base(f.Path)
		if base == "Chart.yaml" || base == "Chart.yml" || inChart(f.Path) {
			continue
		}
		if base == "kustomization.yaml" || base == "kustomization.yml" || base == "Kustomization" {
			set.Skipped = append(set.Skipped, Skipped{File: f.Path, Reason: "kustomization not built: driftless applies plain manifests only (run `kustomize build` and commit the output); the other manifests beside it are applied as they are"})
			continue
		}
		docs, perr := splitDocuments(f)
		problems = append(problems, perr...)
		for _, d := range docs {
			problems = append(problems, set.add(d, seen)...)
		}
	}
	if len(problems) == 0 {
		problems = append(problems, set.checkServiceAddresses()...)
	}
	if len(problems) == 0 {
		problems = append(problems, set.resolveClaims()...)
	}
	if len(problems) == 0 {
		set.resolveRefs()
		set.resolvePriorities()
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, Errors(problems)
	}
	sortProblems(set.Warnings)
	sort.Slice(set.Workloads, func(i, j int) bool { return refLess(set.Workloads[i].Ref, set.Workloads[j].Ref) })
	sort.Slice(set.CronJobs, func(i, j int) bool { return refLess(set.CronJobs[i].Ref, set.CronJobs[j].Ref) })
	return set, nil
}

func (s *Set) add(d *document, seen map[string]string) []Problem {
	apiVersion, kind, name := d.header()
	loc := func(field, msg string) []Problem {
		return []Problem{{File: d.file, Line: d.lineOf(field), Field: field, Message: msg}}
	}
	if kind == "" {
		return loc("kind", "required")
	}
	if apiVersion == "" {
		return loc("apiVersion", "required")
	}
	if reason, ok := notHandled[kind]; ok {
		s.Skipped = append(s.Skipped, Skipped{File: d.file, Line: d.line, APIVersion: apiVersion, Kind: kind, Name: name, Reason: reason})
		return nil
	}
	want, known := kinds[kind]
	if !known {
		return []Problem{{File: d.file, Line: d.lineOf("kind"), Field: "kind", Value: kind, HasValue: true, Message: "unknown kind"}}
	}
	if apiVersion != want {
		if kind == "CronJob" && strings.HasPrefix(apiVersion, "batch/") {
			return []Problem{{File: d.file, Line: d.lineOf("apiVersion"), Field: "apiVersion", Value: apiVersion, HasValue: true,
				Message: "CronJob must be batch/v1 (" + apiVersion + " is not served by Kubernetes since 1.25; the fields are the same)"}}
		}
		return []Problem{{File: d.file, Line: d.lineOf("apiVersion"), Field: "apiVersion", Value: apiVersion, HasValue: true,
			Message: fmt.Sprintf("%s must be %s", kind, want)}}
	}

	var (
		probs []Problem
		ok    bool
		meta  *ObjectMeta
		v     validator
	)
	switch kind {
	case "Deployment":
		o := &Deployment{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addDeployment(d, o) }
	case "DaemonSet":
		o := &DaemonSet{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addDaemonSet(d, o) }
	case "ReplicaSet":
		o := &ReplicaSet{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addReplicaSet(d, o) }
	case "Job":
		o := &Job{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addJob(d, o) }
	case "CronJob":
		o := &CronJob{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addCronJob(d, o) }
	case "Pod":
		o := &Pod{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addPod(d, o) }
	case "ConfigMap":
		o := &ConfigMap{}
		probs, ok = d.decodeInto(o)
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addConfigMap(d, o) }
	case "Secret":
		o := &Secret{}
		probs, ok = d.decodeInto(o)
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addSecret(d, o) }
	case "StatefulSet":
		o := &StatefulSet{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addStatefulSet(d, o) }
	case "PersistentVolumeClaim":
		o := &PersistentVolumeClaim{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addPersistentVolumeClaim(d, o) }
	case "PodDisruptionBudget":
		o := &PodDisruptionBudget{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addPodDisruptionBudget(d, o) }
	case "PriorityClass":
		o := &PriorityClass{}
		probs, ok = d.decodeInto(o)
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addPriorityClass(d, o) }
	case "StorageClass":
		o := &StorageClass{}
		probs, ok = d.decodeInto(o)
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addStorageClass(d, o) }
	case "Service":
		o := &Service{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addService(d, o) }
	case "ServiceAccount":
		o := &ServiceAccount{}
		probs, ok = d.decodeInto(o)
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addServiceAccount(d, o) }
	case "Node":
		o := &Node{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addNode(d, o) }
	}
	if !ok {
		// The document did not decode; still report a bad name, so that
		// one round of fixes is enough more often.
		if name != "" && !isDNS1123Subdomain(name) {
			probs = append(probs, invalid(d, "metadata.name", name, validation.IsDNS1123Subdomain(name))...)
		}
		return probs
	}
	if meta.GenerateName != "" {
		switch {
		case kind != "Job" && kind != "Pod":
			return []Problem{valueProblem(d, "metadata.generateName", meta.GenerateName, "only Jobs and Pods may have a generated name here (every other kind needs a name that stays the same across commits)")}
		case meta.Name == "":
			meta.Name = GeneratedName(meta.GenerateName, d.node)
		}
	}
	cluster := kind == "Node" || kind == "StorageClass" || kind == "PriorityClass"
	probs = append(probs, validateMeta(d, meta, cluster)...)
	if len(probs) > 0 {
		return probs
	}
	id := kind + "/" + meta.Namespace + "/" + meta.Name
	if prev, dup := seen[id]; dup {
		return []Problem{{File: d.file, Line: d.lineOf("metadata.name"), Field: "metadata.name", Value: meta.Name, HasValue: true,
			Message: fmt.Sprintf("%s defined twice (first in %s)", kind, prev)}}
	}
	seen[id] = fmt.Sprintf("%s:%d", d.file, d.line)
	return v(d)
}

type validator func(*document) []Problem

var kinds = map[string]string{
	"Deployment":            "apps/v1",
	"DaemonSet":             "apps/v1",
	"StatefulSet":           "apps/v1",
	"PersistentVolumeClaim": "v1",
	"StorageClass":          "storage.k8s.io/v1",
	"PriorityClass":         "scheduling.k8s.io/v1",
	"PodDisruptionBudget":   "policy/v1",
	"ReplicaSet":            "apps/v1",
	"Job":                   "batch/v1",
	"CronJob":               "batch/v1",
	"Pod":                   "v1",
	"ConfigMap":             "v1",
	"Secret":                "v1",
	"Service":               "v1",
	"ServiceAccount":        "v1",
	"Node":                  "driftless.dev/v1",
}

func (s *Set) workload(d *document, kind string, meta ObjectMeta, tmpl PodTemplateSpec, replicas int) Workload {
	w := Workload{
		Ref:      Ref{Namespace: meta.Namespace, Kind: kind, Name: meta.Name},
		File:     d.file,
		Line:     d.line,
		Replicas: replicas,
		Template: tmpl,
	}
	w.SpecHash = HashTemplate(tmpl)
	w.doc = d
	w.specField = "spec.template.spec"
	if kind == "Pod" {
		w.specField = "spec"
	}
	return w
}

func (s *Set) addDeployment(d *document, o *Deployment) []Problem {
	defaultDeployment(o)
	probs := validateController(d, o.Spec.Selector, &o.Spec.Template, "spec")
	probs = append(probs, validateReplicas(d, o.Spec.Replicas, "spec.replicas")...)
	probs = append(probs, validateStrategy(d, o)...)
	if len(probs) > 0 {
		return probs
	}
	w := s.workload(d, "Deployment", o.Metadata, o.Spec.Template, int(*o.Spec.Replicas))
	st := o.Spec.Strategy
	w.Rollout = &RolloutSpec{
		Strategy:                st.Type,
		MinReadySeconds:         int(o.Spec.MinReadySeconds),
		ProgressDeadlineSeconds: int(*o.Spec.ProgressDeadlineSeconds),
		Paused:                  o.Spec.Paused,
	}
	if st.RollingUpdate != nil {
		w.Rollout.MaxUnavailable, w.Rollout.MaxSurge = *st.RollingUpdate.MaxUnavailable, *st.RollingUpdate.MaxSurge
	}
	s.Workloads = append(s.Workloads, w)
	return nil
}

func (s *Set) addReplicaSet(d *document, o *ReplicaSet) []Problem {
	if o.Spec.Replicas == nil {
		o.Spec.Replicas = ptr[int32](1)
	}
	defaultPodSpec(&o.Spec.Template.Spec, RestartAlways)
	probs := validateController(d, o.Spec.Selector, &o.Spec.Template, "spec")
	probs = append(probs, validateReplicas(d, o.Spec.Replicas, "spec.replicas")...)
	if len(probs) > 0 {
		return probs
	}
	s.Workloads = append(s.Workloads, s.workload(d, "ReplicaSet", o.Metadata, o.Spec.Template, int(*o.Spec.Replicas)))
	return nil
}

func (s *Set) addDaemonSet(d *document, o *DaemonSet) []Problem {
	defaultPodSpec(&o.Spec.Template.Spec, RestartAlways)
	if o.Spec.UpdateStrategy.Type == "" {
		o.Spec.UpdateStrategy.Type = "RollingUpdate"
	}
	if o.Spec.UpdateStrategy.Type == "RollingUpdate" && o.Spec.UpdateStrategy.RollingUpdate == nil {
		o.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: &IntOrString{IntVal: 1}, MaxSurge: &IntOrString{}}
	}
	if o.Spec.RevisionHistoryLimit == nil {
		o.Spec.RevisionHistoryLimit = ptr[int32](10)
	}
	probs := validateController(d, o.Spec.Selector, &o.Spec.Template, "spec")
	probs = append(probs, validateDaemonSetStrategy(d, o)...)
	if o.Spec.MinReadySeconds < 0 {
		probs = append(probs, valueProblem(d, "spec.minReadySeconds", fmt.Sprint(o.Spec.MinReadySeconds), "must be >= 0"))
	}
	if len(probs) > 0 {
		return probs
	}
	w := s.workload(d, "DaemonSet", o.Metadata, o.Spec.Template, 0)
	w.PerNode = true
	w.Rollout = &RolloutSpec{Strategy: o.Spec.UpdateStrategy.Type, MinReadySeconds: int(o.Spec.MinReadySeconds)}
	if ru := o.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		w.Rollout.MaxUnavailable, w.Rollout.MaxSurge = *ru.MaxUnavailable, *ru.MaxSurge
	}
	s.Workloads = append(s.Workloads, w)
	return nil
}

func (s *Set) addJob(d *document, o *Job) []Problem {
	w, probs := s.jobWorkload(d, o.Metadata, &o.Spec, "spec")
	if len(probs) > 0 {
		return probs
	}
	s.Workloads = append(s.Workloads, w)
	return nil
}

// jobWorkload defaults and validates a Job spec (of a Job, or the template
// of a CronJob's runs at prefix) and returns its workload.
func (s *Set) jobWorkload(d *document, meta ObjectMeta, sp *JobSpec, prefix string) (Workload, []Problem) {
	if sp.Completions == nil {
		sp.Completions = ptr[int32](1)
	}
	if sp.Parallelism == nil {
		sp.Parallelism = ptr[int32](1)
	}
	if sp.BackoffLimit == nil {
		sp.BackoffLimit = ptr[int32](6)
	}
	rp := sp.Template.Spec.RestartPolicy
	defaultPodSpec(&sp.Template.Spec, "")
	var probs []Problem
	switch rp {
	case RestartOnFailure, RestartNever:
	case "":
		probs = append(probs, problemAt(d, prefix+".template.spec.restartPolicy", "required for a Job: OnFailure or Never"))
	default:
		probs = append(probs, valueProblem(d, prefix+".template.spec.restartPolicy", rp, "must be OnFailure or Never for a Job"))
	}
	if sp.Selector != nil && (sp.ManualSelector == nil || !*sp.ManualSelector) {
		probs = append(probs, problemAt(d, prefix+".selector", "set by the Job itself unless spec.manualSelector is true"))
	}
	probs = append(probs, validateReplicas(d, sp.Parallelism, prefix+".parallelism")...)
	probs = append(probs, validateReplicas(d, sp.Completions, prefix+".completions")...)
	probs = append(probs, validateReplicas(d, sp.BackoffLimit, prefix+".backoffLimit")...)
	if sp.ActiveDeadlineSeconds != nil && *sp.ActiveDeadlineSeconds <= 0 {
		probs = append(probs, valueProblem(d, prefix+".activeDeadlineSeconds", fmt.Sprint(*sp.ActiveDeadlineSeconds), "must be positive"))
	}
	if sp.TTLSecondsAfterFinished != nil && *sp.TTLSecondsAfterFinished < 0 {
		probs = append(probs, valueProblem(d, prefix+".ttlSecondsAfterFinished", fmt.Sprint(*sp.TTLSecondsAfterFinished), "must be >= 0"))
	}
	probs = append(probs, validateTemplateLabels(d, sp.Template.Metadata, prefix+".template.metadata")...)
	probs = append(probs, validatePodSpec(d, &sp.Template.Spec, prefix+".template.spec")...)
	if len(probs) > 0 {
		return Workload{}, probs
	}
	n := int(*sp.Parallelism)
	if c := int(*sp.Completions); c < n {
		n = c
	}
	w := s.workload(d, "Job", meta, sp.Template, n)
	w.specField = prefix + ".template.spec"
	js := *sp
	w.Job = &js
	return w, nil
}

func (s *Set) addPod(d *document, o *Pod) []Problem {
	defaultPodSpec(&o.Spec, RestartAlways)
	tmpl := PodTemplateSpec{Metadata: ObjectMeta{Labels: o.Metadata.Labels, Annotations: o.Metadata.Annotations}, Spec: o.Spec}
	if probs := validatePodSpec(d, &o.Spec, "spec"); len(probs) > 0 {
		return probs
	}
	s.Workloads = append(s.Workloads, s.workload(d, "Pod", o.Metadata, tmpl, 1))
	return nil
}

func (s *Set) addConfigMap(d *document, o *ConfigMap) []Problem {
	var probs []Problem
	for k := range o.Data {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "data."+k, k, "must be a valid config key ([-._a-zA-Z0-9]+)"))
		}
		if _, dup := o.BinaryData[k]; dup {
			probs = append(probs, valueProblem(d, "binaryData."+k, k, "duplicates a key of data"))
		}
	}
	for k := range o.BinaryData {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "binaryData."+k, k, "must be a valid config key ([-._a-zA-Z0-9]+)"))
		}
	}
	if len(probs) > 0 {
		return probs
	}
	s.ConfigMaps = append(s.ConfigMaps, *o)
	return nil
}

func (s *Set) addSecret(d *document, o *Secret) []Problem {
	var probs []Problem
	if _, ok := o.Metadata.Annotations[sealed.Annotation]; ok {
		o.Sealed = true
		probs = append(probs, checkSealed(d, o)...)
	}
	for k := range o.Data {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "data."+k, k, "must be a valid secret key ([-._a-zA-Z0-9]+)"))
		}
	}
	for k := range o.StringData {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "stringData."+k, k, "must be a valid secret key ([-._a-zA-Z0-9]+)"))
		}
	}
	if len(probs) > 0 {
		return probs
	}
	if o.Type == "" {
		o.Type = "Opaque"
	}
	// stringData is merged into data, as the API server does.
	if len(o.StringData) > 0 {
		if o.Data == nil {
			o.Data = map[string][]byte{}
		}
		for k, v := range o.StringData {
			o.Data[k] = []byte(v)
		}
		o.StringData = nil
	}
	if o.Sealed {
		s.Secrets = append(s.Secrets, *o)
		return nil
	}
	plain := Problem{File: d.file, Line: d.line, Field: "kind", Message: fmt.Sprintf("Secret %s/%s is stored in plain text in Git (seal it: driftless secret seal)", o.Metadata.Namespace, o.Metadata.Name)}
	if s.opts.RequireSealedSecrets {
		plain.Message += "; sealed Secrets are required"
		return []Problem{plain}
	}
	s.Secrets = append(s.Secrets, *o)
	s.Warnings = append(s.Warnings, plain)
	return nil
}

// checkSealed validates the structure of a sealed Secret: the scheme, no
// stringData, and every data value a well-formed age ciphertext. It
// needs no key.
func checkSealed(d *document, o *Secret) []Problem {
	field := "metadata.annotations." + sealed.Annotation
	if v := o.Metadata.Annotations[sealed.Annotation]; v != sealed.Scheme {
		return []Problem{valueProblem(d, field, v, fmt.Sprintf("unknown sealing scheme (want %q)", sealed.Scheme))}
	}
	var probs []Problem
	for k := range o.StringData {
		probs = append(probs, Problem{File: d.file, Line: d.lineOf("stringData." + k), Field: "stringData." + k,
			Message: "a sealed Secret holds its values as age ciphertexts under data (driftless secret seal); a plain value here would be in Git"})
	}
	if len(o.Data) == 0 {
		probs = append(probs, Problem{File: d.file, Line: d.lineOf(field), Field: "data", Message: "a sealed Secret needs at least one sealed value"})
	}
	for k, v := range o.Data {
		if _, err := sealed.Recipients(v); err != nil {
			probs = append(probs, Problem{File: d.file, Line: d.lineOf("data." + k), Field: "data." + k, Message: err.Error()})
		}
	}
	return probs
}

func (s *Set) addNode(d *document, o *Node) []Problem {
	var probs []Problem
	for i, t := range o.Spec.Taints {
		p := fmt.Sprintf("spec.taints[%d]", i)
		probs = append(probs, invalid(d, p+".key", t.Key, validation.IsQualifiedName(t.Key))...)
		switch t.Effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			probs = append(probs, valueProblem(d, p+".effect", t.Effect, "must be NoSchedule, PreferNoSchedule or NoExecute"))
		}
	}
	probs = append(probs, validateLabels(d, o.Spec.Labels, "spec.labels")...)
	if len(probs) > 0 {
		return probs
	}
	s.Nodes = append(s.Nodes, *o)
	return nil
}

// HashTemplate is the stable hash of a defaulted pod template: canonical
// JSON (encoding/json sorts map keys) → sha256 → first 10 hex digits.
func HashTemplate(t PodTemplateSpec) string {
	// Termination message settings equal to Kubernetes' defaults (as
	// exported manifests spell them out) hash as if absent: a template
	// that states them is the same template.
	t.Spec.InitContainers = withoutDefaultTermination(t.Spec.InitContainers)
	t.Spec.Containers = withoutDefaultTermination(t.Spec.Containers)
	b, err := json.Marshal(t)
	if err != nil {
		panic(fmt.Sprintf("hash template: %v", err)) // only plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

func withoutDefaultTermination(cs []Container) []Container {
	var out []Container
	for i, c := range cs {
		if c.TerminationMessagePath != DefaultTerminationMessagePath && c.TerminationMessagePolicy != TerminationMessageFile {
			continue
		}
		if out == nil {
			out = append([]Container(nil), cs...)
		}
		if c.TerminationMessagePath == DefaultTerminationMessagePath {
			out[i].TerminationMessagePath = ""
		}
		if c.TerminationMessagePolicy == TerminationMessageFile {
			out[i].TerminationMessagePolicy = ""
		}
	}
	if out == nil {
		return cs
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// resolveRefs finds the ConfigMaps and Secrets each workload refers to in
// the same commit and namespace and folds their content into the spec
// hash. As in Kubernetes, a reference to a missing one (or to a missing
// key) that is not marked optional does not make the commit invalid: the
// replicas that use it stay Pending (CreateContainerConfigError) until a
// commit adds it, which changes the spec hash. It is a warning here.
func (s *Set) resolveRefs() {
	cms := map[string]ConfigMap{}
	for _, c := range s.ConfigMaps {
		cms[c.Metadata.Namespace+"/"+c.Metadata.Name] = c
	}
	secs := map[string]Secret{}
	for _, c := range s.Secrets {
		secs[c.Metadata.Namespace+"/"+c.Metadata.Name] = c
	}
	sas := map[string]bool{}
	saAutomount := map[string]*bool{}
	for _, a := range s.ServiceAccounts {
		sas[a.Metadata.Namespace+"/"+a.Metadata.Name] = true
		saAutomount[a.Metadata.Namespace+"/"+a.Metadata.Name] = a.AutomountServiceAccountToken
	}
	seen := map[string]bool{}
	add := func(p Problem) {
		if !seen[p.String()] {
			seen[p.String()] = true
			s.Warnings = append(s.Warnings, p)
		}
	}
	all := make([]*Workload, 0, len(s.Workloads)+len(s.CronJobs))
	for i := range s.Workloads {
		all = append(all, &s.Workloads[i])
	}
	for i := range s.CronJobs {
		all = append(all, &s.CronJobs[i].Template)
	}
	for _, w := range all {
		d, spec := w.doc, w.Template.Spec
		missing := func(field, kind, name string) {
			add(valueProblem(d, field, name, fmt.Sprintf("%s not found in namespace %s of this commit: its replicas stay Pending (CreateContainerConfigError) until a commit adds it (mark it optional: true if it may be absent)", kind, w.Namespace)))
		}
		useCM := func(field, name, key string, optional *bool) {
			c, ok := cms[w.Namespace+"/"+name]
			if !ok {
				if optional == nil || !*optional {
					missing(field+".name", "ConfigMap", name)
				}
				return
			}
			if key != "" {
				_, inData := c.Data[key]
				_, inBin := c.BinaryData[key]
				if !inData && !inBin && (optional == nil || !*optional) {
					add(valueProblem(d, field+".key", key, fmt.Sprintf("no such key in ConfigMap %s: its replicas stay Pending (CreateContainerConfigError) until a commit adds it", name)))
				}
			}
			if w.ConfigMaps == nil {
				w.ConfigMaps = map[string]ConfigMap{}
			}
			w.ConfigMaps[name] = c
		}
		useSecret := func(field, nameField, name, key string, optional *bool) {
			c, ok := secs[w.Namespace+"/"+name]
			if !ok {
				if optional == nil || !*optional {
					missing(field+"."+nameField, "Secret", name)
				}
				return
			}
			if _, in := c.Data[key]; key != "" && !in && (optional == nil || !*optional) {
				add(valueProblem(d, field+".key", key, fmt.Sprintf("no such key in Secret %s: its replicas stay Pending (CreateContainerConfigError) until a commit adds it", name)))
			}
			if w.Secrets == nil {
				w.Secrets = map[string]Secret{}
			}
			w.Secrets[name] = c
		}
		all := make([]Container, 0, len(spec.InitContainers)+len(spec.Containers))
		all = append(append(all, spec.InitContainers...), spec.Containers...)
		for ci, c := range all {
			cp := fmt.Sprintf("%s.containers[%d]", w.specField, ci-len(spec.InitContainers))
			if ci < len(spec.InitContainers) {
				cp = fmt.Sprintf("%s.initContainers[%d]", w.specField, ci)
			}
			for ei, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				ep := fmt.Sprintf("%s.env[%d].valueFrom", cp, ei)
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					useCM(ep+".configMapKeyRef", r.Name, r.Key, r.Optional)
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					useSecret(ep+".secretKeyRef", "name", r.Name, r.Key, r.Optional)
				}
			}
			for ei, e := range c.EnvFrom {
				ep := fmt.Sprintf("%s.envFrom[%d]", cp, ei)
				if r := e.ConfigMapRef; r != nil {
					useCM(ep+".configMapRef", r.Name, "", r.Optional)
				}
				if r := e.SecretRef; r != nil {
					useSecret(ep+".secretRef", "name", r.Name, "", r.Optional)
				}
			}
		}
		for vi, v := range spec.Volumes {
			vp := fmt.Sprintf("%s.volumes[%d]", w.specField, vi)
			if v.ConfigMap != nil {
				for _, it := range v.ConfigMap.Items {
					useCM(vp+".configMap", v.ConfigMap.Name, it.Key, v.ConfigMap.Optional)
				}
				useCM(vp+".configMap", v.ConfigMap.Name, "", v.ConfigMap.Optional)
			}
			if v.Secret != nil {
				for _, it := range v.Secret.Items {
					useSecret(vp+".secret", "secretName", v.Secret.SecretName, it.Key, v.Secret.Optional)
				}
				useSecret(vp+".secret", "secretName", v.Secret.SecretName, "", v.Secret.Optional)
			}
		}
		sa := spec.ServiceAccount()
		if sa != "default" && !sas[w.Namespace+"/"+sa] {
			w.MissingServiceAccount = sa
			f := w.specField + ".serviceAccountName"
			if spec.ServiceAccountName == "" {
				f = w.specField + ".serviceAccount"
			}
			add(valueProblem(d, f, sa, fmt.Sprintf("ServiceAccount not found in namespace %s of this commit: its replicas stay Pending (CreateContainerConfigError) until a commit adds it", w.Namespace)))
		}
		for i, ps := range spec.ImagePullSecrets {
			f := fmt.Sprintf("%s.imagePullSecrets[%d].name", w.specField, i)
			c, ok := secs[w.Namespace+"/"+ps.Name]
			if !ok {
				add(valueProblem(d, f, ps.Name, fmt.Sprintf("Secret not found in namespace %s of this commit: the pod's images are pulled without it (with --registry-config's credentials)", w.Namespace)))
				continue
			}
			_, cfgJSON := c.Data[".dockerconfigjson"]
			_, cfg := c.Data[".dockercfg"]
			if !cfgJSON && !cfg {
				add(valueProblem(d, f, ps.Name, "Secret has no .dockerconfigjson (type kubernetes.io/dockerconfigjson): it gives no credentials"))
			}
			if w.Secrets == nil {
				w.Secrets = map[string]Secret{}
			}
			w.Secrets[ps.Name] = c
		}
		for i, tol := range spec.Tolerations {
			if tol.TolerationSeconds != nil && !strings.HasPrefix(tol.Key, "node.kubernetes.io/") {
				add(valueProblem(d, fmt.Sprintf("%s.tolerations[%d].tolerationSeconds", w.specField, i), fmt.Sprint(*tol.TolerationSeconds),
					"not applied: the toleration holds without a time limit"))
			}
		}
		// A pod that names its ServiceAccount is one that may talk to the
		// API with its token: say that none is mounted (a pod left on
		// "default" is not warned about, most never read it).
		if sa != "default" && automountToken(spec, saAutomount[w.Namespace+"/"+sa]) {
			add(Problem{File: d.file, Line: d.lineOf(w.specField), Field: w.specField + ".automountServiceAccountToken",
				Message: "no service account token is mounted (there is no Kubernetes API server); set automountServiceAccountToken: false to say the pod needs none"})
		}
		if len(w.ConfigMaps)+len(w.Secrets) > 0 || w.MissingServiceAccount != "" {
			w.SpecHash = hashWithRefs(w.Template, w.ConfigMaps, w.Secrets, w.MissingServiceAccount)
		}
	}
}

// automountToken reports whether Kubernetes would mount a token into the
// pod: unless the pod, or else its ServiceAccount, says false.
func automountToken(spec PodSpec, sa *bool) bool {
	if spec.AutomountServiceAccountToken != nil {
		return *spec.AutomountServiceAccountToken
	}
	return sa == nil || *sa
}

// hashWithRefs hashes the template together with the content of the
// ConfigMaps and Secrets it uses (the hash is public; it reveals nothing of
// the values).
func hashWithRefs(t PodTemplateSpec, cms map[string]ConfigMap, secs map[string]Secret, missingSA string) string {
	type cm struct {
		Data       map[string]string
		BinaryData map[string][]byte
	}
	refs := struct {
		Template   PodTemplateSpec
		ConfigMaps map[string]cm
		Secrets    map[string]map[string][]byte
		// MissingServiceAccount changes the hash once the commit adds it.
		MissingServiceAccount string `json:",omitempty"`
	}{Template: t, ConfigMaps: map[string]cm{}, Secrets: map[string]map[string][]byte{}, MissingServiceAccount: missingSA}
	for n, c := range cms {
		refs.ConfigMaps[n] = cm{c.Data, c.BinaryData}
	}
	for n, c := range secs {
		refs.Secrets[n] = c.Data
	}
	b, err := json.Marshal(refs)
	if err != nil {
		panic(fmt.Sprintf("hash template: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

// generatedAlphabet is the letters Kubernetes uses for generated names
// (no vowels, no look-alike digits).
const generatedAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// GeneratedName is a Job's or Pod's name from its generateName: the
// prefix and five letters from a hash of the document's content. Every
// leader derives the same one from the same commit, a commit that does
// not change the document keeps it (the run is not started again), and
// a change gives a new name: a new run, the old one in history.
func GeneratedName(prefix string, doc *yaml.Node) string {
	b, err := yaml.Marshal(doc)
	if err != nil {
		b = []byte(prefix)
	}
	h := sha256.Sum256(b)
	suffix := make([]byte, 5)
	for i := range suffix {
		suffix[i] = generatedAlphabet[int(h[i])%len(generatedAlphabet)]
	}
	return prefix + string(suffix)
}
