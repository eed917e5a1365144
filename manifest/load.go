package manifest

import (
	"k8s.io/apimachinery/pkg/util/validation"

	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// builtinGroups are Kubernetes' own API groups: an unknown kind in one of
// them is a mistake, in any other group a custom resource.
var builtinGroups = map[string]bool{
	"apps": true, "batch": true, "policy": true, "autoscaling": true, "networking.k8s.io": true,
	"rbac.authorization.k8s.io": true, "storage.k8s.io": true, "scheduling.k8s.io": true, "node.k8s.io": true,
	"apiextensions.k8s.io": true, "admissionregistration.k8s.io": true, "apiregistration.k8s.io": true,
	"coordination.k8s.io": true, "discovery.k8s.io": true, "events.k8s.io": true, "certificates.k8s.io": true,
	"flowcontrol.apiserver.k8s.io": true, "resource.k8s.io": true, "authentication.k8s.io": true,
	"authorization.k8s.io": true, "extensions": true, "internal.apiserver.k8s.io": true, "storagemigration.k8s.io": true,
}

// notHandled are Kubernetes kinds driftless recognises and does not apply.
var notHandled = map[string]string{
	"Ingress":                          "ingress is not handled by driftless",
	"IngressClass":                     "ingress is not handled by driftless",
	"NetworkPolicy":                    "network policies are not handled by driftless",
	"Endpoints":                        "service endpoints are not handled by driftless",
	"EndpointSlice":                    "service endpoints are not handled by driftless",
	"PersistentVolume":                 "persistent volumes are not handled by driftless",
	"Role":                             "there is no Kubernetes API to authorise",
	"RoleBinding":                      "there is no Kubernetes API to authorise",
	"ClusterRole":                      "there is no Kubernetes API to authorise",
	"ClusterRoleBinding":               "there is no Kubernetes API to authorise",
	"Namespace":                        "namespaces exist implicitly in driftless",
	"HorizontalPodAutoscaler":          "autoscaling is not handled by driftless",
	"LimitRange":                       "admission policies are not handled by driftless",
	"ResourceQuota":                    "admission policies are not handled by driftless",
	"CustomResourceDefinition":         "custom resources are not handled by driftless",
	"MutatingWebhookConfiguration":     "admission webhooks are not handled by driftless",
	"ValidatingWebhookConfiguration":   "admission webhooks are not handled by driftless",
	"ValidatingAdmissionPolicy":        "admission policies are not handled by driftless",
	"ValidatingAdmissionPolicyBinding": "admission policies are not handled by driftless",
	"APIService":                       "aggregated APIs are not served by driftless (there is no Kubernetes API server)",
	"Lease":                            "there is no Kubernetes API server (leases are gossip here)",
	"CSIDriver":                        "CSI drivers are not used by driftless (claims are node directories)",
	"VolumeAttachment":                 "CSI drivers are not used by driftless (claims are node directories)",
	"FlowSchema":                       "there is no Kubernetes API server",
	"PriorityLevelConfiguration":       "there is no Kubernetes API server",
	"CertificateSigningRequest":        "there is no Kubernetes API server",
	"PodTemplate":                      "pod templates are used inside workloads only",
	"Event":                            "events are the status history here",
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
		problems = append(problems, set.resolveRuntimes()...)
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
		// An object of an API that is not Kubernetes' own (a custom
		// resource: a ServiceMonitor, a Certificate) is skipped, as are
		// Kubernetes' own kinds driftless does not apply; a kind unknown
		// in Kubernetes' own groups is a typo.
		if group, _, ok := strings.Cut(apiVersion, "/"); ok && !builtinGroups[group] {
			s.Skipped = append(s.Skipped, Skipped{File: d.file, Line: d.line, APIVersion: apiVersion, Kind: kind, Name: name,
				Reason: "custom resource of " + group + ": not handled by driftless (its operator is not running here)"})
			return nil
		}
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
	case "ReplicationController":
		o := &ReplicationController{}
		probs, ok = d.decodeInto(o, "status")
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addReplicationController(d, o) }
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
	case "RuntimeClass":
		o := &RuntimeClass{}
		probs, ok = d.decodeInto(o)
		meta, v = &o.Metadata, func(d *document) []Problem { return s.addRuntimeClass(d, o) }
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
	cluster := kind == "Node" || kind == "StorageClass" || kind == "PriorityClass" || kind == "RuntimeClass"
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
	"RuntimeClass":          "node.k8s.io/v1",
	"ReplicaSet":            "apps/v1",
	"ReplicationController": "v1",
	"Job":                   "batch/v1",
	"CronJob":               "batch/v1",
	"Pod":                   "v1",
	"ConfigMap":             "v1",
	"Secret":                "v1",
	"Service":               "v1",
	"ServiceAccount":        "v1",
	"Node":                  "driftless.dev/v1",
}

func ptr[T any](v T) *T { return &v }
