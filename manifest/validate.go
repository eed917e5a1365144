package manifest

import (
	"k8s.io/apimachinery/pkg/util/validation"

	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

var ()

func problemAt(d *document, field, msg string) Problem {
	return Problem{File: d.file, Line: d.lineOf(field), Field: field, Message: msg}
}

func valueProblem(d *document, field, value, msg string) Problem {
	return Problem{File: d.file, Line: d.lineOf(field), Field: field, Value: value, HasValue: true, Message: msg}
}

// Names, keys and values are checked by Kubernetes' own rules
// (apimachinery's util/validation), and refused in its words.

func isConfigKey(k string) bool        { return len(validation.IsConfigMapKey(k)) == 0 }
func isQualifiedName(k string) bool    { return len(validation.IsQualifiedName(k)) == 0 }
func isDNS1123Label(s string) bool     { return len(validation.IsDNS1123Label(s)) == 0 }
func isLabelValue(v string) bool       { return len(validation.IsValidLabelValue(v)) == 0 }
func isDNS1123Subdomain(s string) bool { return len(validation.IsDNS1123Subdomain(s)) == 0 }

// invalid is the problem of value at field per Kubernetes' messages
// (errs, from util/validation), or nil when errs is empty.
func invalid(d *document, field, value string, errs []string) []Problem {
	if len(errs) == 0 {
		return nil
	}
	return []Problem{valueProblem(d, field, value, strings.Join(errs, "; "))}
}

func validateMeta(d *document, m *ObjectMeta, clusterScoped bool) []Problem {
	var probs []Problem
	if m.Name == "" {
		probs = append(probs, problemAt(d, "metadata.name", "required"))
	} else {
		probs = append(probs, invalid(d, "metadata.name", m.Name, validation.IsDNS1123Subdomain(m.Name))...)
	}
	if clusterScoped {
		if m.Namespace != "" {
			probs = append(probs, valueProblem(d, "metadata.namespace", m.Namespace, "a cluster-scoped object has no namespace"))
		}
	} else {
		if m.Namespace == "" {
			m.Namespace = "default"
		} else {
			probs = append(probs, invalid(d, "metadata.namespace", m.Namespace, validation.IsDNS1123Label(m.Namespace))...)
		}
	}
	probs = append(probs, validateLabels(d, m.Labels, "metadata.labels")...)
	for k := range m.Annotations {
		probs = append(probs, invalid(d, "metadata.annotations."+k, k, validation.IsQualifiedName(k))...)
	}
	return probs
}

func validateLabels(d *document, labels map[string]string, field string) []Problem {
	var probs []Problem
	for k, v := range labels {
		probs = append(probs, invalid(d, field+"."+k, k, validation.IsQualifiedName(k))...)
		probs = append(probs, invalid(d, field+"."+k, v, validation.IsValidLabelValue(v))...)
	}
	return probs
}

func validateReplicas(d *document, r *int32, field string) []Problem {
	if r != nil && *r < 0 {
		return []Problem{valueProblem(d, field, fmt.Sprint(*r), "must be >= 0")}
	}
	return nil
}

func defaultDeployment(o *Deployment) {
	sp := &o.Spec
	if sp.Replicas == nil {
		sp.Replicas = ptr[int32](1)
	}
	if sp.Strategy.Type == "" {
		sp.Strategy.Type = "RollingUpdate"
	}
	if sp.Strategy.Type == "RollingUpdate" {
		if sp.Strategy.RollingUpdate == nil {
			sp.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		if sp.Strategy.RollingUpdate.MaxUnavailable == nil {
			sp.Strategy.RollingUpdate.MaxUnavailable = &IntOrString{IsString: true, StrVal: "25%"}
		}
		if sp.Strategy.RollingUpdate.MaxSurge == nil {
			sp.Strategy.RollingUpdate.MaxSurge = &IntOrString{IsString: true, StrVal: "25%"}
		}
	}
	if sp.RevisionHistoryLimit == nil {
		sp.RevisionHistoryLimit = ptr[int32](10)
	}
	if sp.ProgressDeadlineSeconds == nil {
		sp.ProgressDeadlineSeconds = ptr[int32](600)
	}
	defaultPodSpec(&sp.Template.Spec, RestartAlways)
}

// validateController checks what apps/v1 controllers share: a selector
// that matches the template's labels, and the pod spec.
func validateController(d *document, sel *LabelSelector, t *PodTemplateSpec, field string) []Problem {
	var probs []Problem
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		probs = append(probs, problemAt(d, field+".selector", "required (apps/v1)"))
	} else {
		probs = append(probs, validateLabels(d, sel.MatchLabels, field+".selector.matchLabels")...)
		if !sel.Matches(t.Metadata.Labels) {
			probs = append(probs, problemAt(d, field+".template.metadata.labels", "must match spec.selector"))
		}
		probs = append(probs, validateSelectorExpressions(d, sel.MatchExpressions, field+".selector")...)
	}
	if t.Spec.RestartPolicy != RestartAlways {
		probs = append(probs, valueProblem(d, field+".template.spec.restartPolicy", t.Spec.RestartPolicy, "must be Always"))
	}
	probs = append(probs, validateTemplateLabels(d, t.Metadata, field+".template.metadata")...)
	probs = append(probs, validatePodSpec(d, &t.Spec, field+".template.spec")...)
	return probs
}

func validateTemplateLabels(d *document, m ObjectMeta, field string) []Problem {
	var probs []Problem
	probs = append(probs, validateLabels(d, m.Labels, field+".labels")...)
	// A template's name and namespace are ignored, as Kubernetes
	// ignores them (exported and hand-written manifests carry them).
	return probs
}

// defaultPodSpec fills Kubernetes' defaults. restartPolicy is defaulted to
// def unless def is empty (Jobs must say it).
func defaultPodSpec(s *PodSpec, def string) {
	if s.RestartPolicy == "" && def != "" {
		s.RestartPolicy = def
	}
	if s.TerminationGracePeriodSeconds == nil {
		s.TerminationGracePeriodSeconds = ptr[int64](30)
	}
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i])
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i])
	}
}

// defaultPullPolicy is Always for :latest or an untagged image, else
// IfNotPresent (an image pinned by digest is IfNotPresent).
func defaultPullPolicy(image string) string {
	if strings.Contains(image, "@") {
		return "IfNotPresent"
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i < 0 || last[i+1:] == "latest" {
		return "Always"
	}
	return "IfNotPresent"
}

var knownResources = map[string]bool{"cpu": true, "memory": true, "ephemeral-storage": true}

func validatePodSpec(d *document, s *PodSpec, field string) []Problem {
	var probs []Problem
	switch s.RestartPolicy {
	case RestartAlways, RestartOnFailure, RestartNever, "":
	default:
		probs = append(probs, valueProblem(d, field+".restartPolicy", s.RestartPolicy, "must be Always, OnFailure or Never"))
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		probs = append(probs, valueProblem(d, field+".terminationGracePeriodSeconds", fmt.Sprint(*g), "must be >= 0"))
	}
	if s.Hostname != "" && !isDNS1123Label(s.Hostname) {
		probs = append(probs, invalid(d, field+".hostname", s.Hostname, validation.IsDNS1123Label(s.Hostname))...)
	}
	probs = append(probs, validateLabels(d, s.NodeSelector, field+".nodeSelector")...)
	probs = append(probs, validateScheduling(d, s, field)...)
	probs = append(probs, validatePodNaming(d, s, field)...)

	volumes := map[string]bool{}
	for i, v := range s.Volumes {
		p := fmt.Sprintf("%s.volumes[%d]", field, i)
		if v.Name == "" {
			probs = append(probs, problemAt(d, p+".name", "required"))
		} else if !isDNS1123Label(v.Name) {
			probs = append(probs, invalid(d, p+".name", v.Name, validation.IsDNS1123Label(v.Name))...)
		} else if volumes[v.Name] {
			probs = append(probs, valueProblem(d, p+".name", v.Name, "duplicate volume name"))
		}
		volumes[v.Name] = true
		n := 0
		if v.EmptyDir != nil {
			n++
			if m := v.EmptyDir.Medium; m != "" && m != "Memory" {
				probs = append(probs, valueProblem(d, p+".emptyDir.medium", m, `must be "" or Memory`))
			}
		}
		if v.ConfigMap != nil {
			n++
			if v.ConfigMap.Name == "" {
				probs = append(probs, problemAt(d, p+".configMap.name", "required"))
			}
			probs = append(probs, validateItems(d, v.ConfigMap.Items, v.ConfigMap.DefaultMode, p+".configMap")...)
		}
		if v.Secret != nil {
			n++
			if v.Secret.SecretName == "" {
				probs = append(probs, problemAt(d, p+".secret.secretName", "required"))
			}
			probs = append(probs, validateItems(d, v.Secret.Items, v.Secret.DefaultMode, p+".secret")...)
		}
		if v.DownwardAPI != nil {
			n++
			probs = append(probs, validateDownwardAPI(d, s, v.DownwardAPI, p+".downwardAPI")...)
		}
		if v.PersistentVolumeClaim != nil {
			n++
			probs = append(probs, validateClaimVolume(d, &v, p)...)
		}
		if v.HostPath != nil {
			n++
			if !path.IsAbs(v.HostPath.Path) {
				probs = append(probs, valueProblem(d, p+".hostPath.path", v.HostPath.Path, "must be an absolute path"))
			}
			switch v.HostPath.Type {
			case "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice":
			default:
				probs = append(probs, valueProblem(d, p+".hostPath.type", v.HostPath.Type, "unknown hostPath type"))
			}
		}
		switch {
		case n == 0:
			probs = append(probs, problemAt(d, p, "must specify a volume source (emptyDir, hostPath, configMap, secret, downwardAPI or persistentVolumeClaim)"))
		case n > 1:
			probs = append(probs, problemAt(d, p, "may not specify more than one volume source"))
		}
	}

	if len(s.Containers) == 0 {
		probs = append(probs, problemAt(d, field+".containers", "at least one container is required"))
	}
	names := map[string]bool{}
	hostPorts := map[string]bool{}
	for i := range s.InitContainers {
		p := fmt.Sprintf("%s.initContainers[%d]", field, i)
		probs = append(probs, validateContainer(d, s, &s.InitContainers[i], p, true, names, hostPorts, volumes)...)
	}
	for i := range s.Containers {
		p := fmt.Sprintf("%s.containers[%d]", field, i)
		probs = append(probs, validateContainer(d, s, &s.Containers[i], p, false, names, hostPorts, volumes)...)
	}
	probs = append(probs, validatePodSecurity(d, s.SecurityContext, field+".securityContext")...)
	return probs
}

// validateContainer checks one container (init is set for init
// containers); names, hostPorts and volumes are shared across the pod.
func validateContainer(d *document, s *PodSpec, c *Container, p string, init bool, names, hostPorts, volumes map[string]bool) []Problem {
	var probs []Problem
	switch {
	case c.Name == "":
		probs = append(probs, problemAt(d, p+".name", "required"))
	case !isDNS1123Label(c.Name):
		probs = append(probs, invalid(d, p+".name", c.Name, validation.IsDNS1123Label(c.Name))...)
	case names[c.Name]:
		probs = append(probs, valueProblem(d, p+".name", c.Name, "duplicate container name"))
	}
	names[c.Name] = true
	if strings.TrimSpace(c.Image) == "" {
		probs = append(probs, problemAt(d, p+".image", "required"))
	}
	switch c.ImagePullPolicy {
	case "Always", "IfNotPresent", "Never":
	default:
		probs = append(probs, valueProblem(d, p+".imagePullPolicy", c.ImagePullPolicy, "must be Always, IfNotPresent or Never"))
	}
	if c.WorkingDir != "" && !path.IsAbs(c.WorkingDir) {
		probs = append(probs, valueProblem(d, p+".workingDir", c.WorkingDir, "must be an absolute path"))
	}
	for j, e := range c.Env {
		ep := fmt.Sprintf("%s.env[%d]", p, j)
		if e.Name == "" {
			probs = append(probs, problemAt(d, ep+".name", "required"))
		} else {
			probs = append(probs, invalid(d, ep+".name", e.Name, validation.IsEnvVarName(e.Name))...)
		}
		if e.ValueFrom != nil {
			probs = append(probs, validateEnvSource(d, s, e, ep)...)
		}
	}
	for j, e := range c.EnvFrom {
		ep := fmt.Sprintf("%s.envFrom[%d]", p, j)
		if (e.ConfigMapRef == nil) == (e.SecretRef == nil) {
			probs = append(probs, problemAt(d, ep, "must name exactly one of configMapRef and secretRef"))
		}
		if e.Prefix != "" {
			probs = append(probs, invalid(d, ep+".prefix", e.Prefix, validation.IsEnvVarName(e.Prefix))...)
		}
	}
	portNames := map[string]bool{}
	for j, port := range c.Ports {
		pp := fmt.Sprintf("%s.ports[%d]", p, j)
		if port.ContainerPort < 1 || port.ContainerPort > 65535 {
			probs = append(probs, valueProblem(d, pp+".containerPort", fmt.Sprint(port.ContainerPort), "must be between 1 and 65535"))
		}
		if port.HostPort < 0 || port.HostPort > 65535 {
			probs = append(probs, valueProblem(d, pp+".hostPort", fmt.Sprint(port.HostPort), "must be between 1 and 65535"))
		}
		switch port.Protocol {
		case "TCP", "UDP", "SCTP":
		default:
			probs = append(probs, valueProblem(d, pp+".protocol", port.Protocol, "must be TCP, UDP or SCTP"))
		}
		if port.Name != "" {
			if errs := validation.IsValidPortName(port.Name); len(errs) > 0 {
				probs = append(probs, invalid(d, pp+".name", port.Name, errs)...)
			} else if portNames[port.Name] {
				probs = append(probs, valueProblem(d, pp+".name", port.Name, "duplicate port name"))
			}
			portNames[port.Name] = true
		}
		if port.HostPort > 0 {
			key := fmt.Sprintf("%s/%s:%d", port.Protocol, port.HostIP, port.HostPort)
			if hostPorts[key] {
				probs = append(probs, valueProblem(d, pp+".hostPort", fmt.Sprint(port.HostPort), "duplicate host port"))
			}
			hostPorts[key] = true
		}
	}
	probs = append(probs, validateResources(d, c.Resources, p+".resources")...)
	mounts := map[string]bool{}
	for j, m := range c.VolumeMounts {
		mp := fmt.Sprintf("%s.volumeMounts[%d]", p, j)
		if !volumes[m.Name] {
			probs = append(probs, valueProblem(d, mp+".name", m.Name, "no volume of that name in the pod"))
		}
		if !path.IsAbs(m.MountPath) {
			probs = append(probs, valueProblem(d, mp+".mountPath", m.MountPath, "must be an absolute path"))
		} else if mounts[path.Clean(m.MountPath)] {
			probs = append(probs, valueProblem(d, mp+".mountPath", m.MountPath, "mounted twice"))
		}
		mounts[path.Clean(m.MountPath)] = true
		if m.SubPath != "" && (path.IsAbs(m.SubPath) || strings.HasPrefix(path.Clean(m.SubPath), "..")) {
			probs = append(probs, valueProblem(d, mp+".subPath", m.SubPath, "must be a relative path inside the volume"))
		}
		switch m.MountPropagation {
		case "", "None", "HostToContainer":
		case "Bidirectional":
			if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
				probs = append(probs, valueProblem(d, mp+".mountPropagation", m.MountPropagation, "Bidirectional mount propagation is available only to privileged containers"))
			}
		default:
			probs = append(probs, valueProblem(d, mp+".mountPropagation", m.MountPropagation, "must be None, HostToContainer or Bidirectional"))
		}
	}
	probs = append(probs, validateContainerExtras(d, c, p, init)...)
	return probs
}

func validateResources(d *document, r ResourceRequirements, field string) []Problem {
	var probs []Problem
	check := func(list ResourceList, kind string) {
		for name, q := range list {
			p := field + "." + kind + "." + name
			if !knownResources[name] && !strings.Contains(name, "/") {
				probs = append(probs, valueProblem(d, p, name, "unknown resource (cpu, memory, ephemeral-storage)"))
				continue
			}
			if q.Sign() < 0 {
				probs = append(probs, valueProblem(d, p, q.String(), "must be >= 0"))
			}
		}
	}
	check(r.Limits, "limits")
	check(r.Requests, "requests")
	for name, req := range r.Requests {
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			probs = append(probs, valueProblem(d, field+".requests."+name, req.String(), fmt.Sprintf("must be less than or equal to the %s limit (%s)", name, lim.String())))
		}
	}
	return probs
}

// Fields a fieldRef may select, as Kubernetes allows them in env.
var envFieldPaths = regexp.MustCompile(`^(metadata\.name|metadata\.namespace|metadata\.uid|spec\.nodeName|spec\.serviceAccountName|status\.podIP|status\.podIPs|status\.hostIP|status\.hostIPs|metadata\.labels\['[^']+'\]|metadata\.annotations\['[^']+'\])$`)

var resourceFields = map[string]bool{"limits.cpu": true, "limits.memory": true, "limits.ephemeral-storage": true,
	"requests.cpu": true, "requests.memory": true, "requests.ephemeral-storage": true}

func validateEnvSource(d *document, s *PodSpec, e EnvVar, p string) []Problem {
	var probs []Problem
	src := e.ValueFrom
	if e.Value != "" {
		probs = append(probs, problemAt(d, p+".valueFrom", "may not be set together with value"))
	}
	n := 0
	for _, set := range []bool{src.ConfigMapKeyRef != nil, src.SecretKeyRef != nil, src.FieldRef != nil, src.ResourceFieldRef != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		probs = append(probs, problemAt(d, p+".valueFrom", "must name exactly one source"))
	}
	for _, ks := range []struct {
		sel  *KeySelector
		name string
	}{{src.ConfigMapKeyRef, "configMapKeyRef"}, {src.SecretKeyRef, "secretKeyRef"}} {
		if ks.sel == nil {
			continue
		}
		if ks.sel.Name == "" {
			probs = append(probs, problemAt(d, p+".valueFrom."+ks.name+".name", "required"))
		}
		probs = append(probs, invalid(d, p+".valueFrom."+ks.name+".key", ks.sel.Key, validation.IsConfigMapKey(ks.sel.Key))...)
	}
	if f := src.FieldRef; f != nil && !envFieldPaths.MatchString(f.FieldPath) {
		probs = append(probs, valueProblem(d, p+".valueFrom.fieldRef.fieldPath", f.FieldPath, "not a supported field (metadata.name, metadata.namespace, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, status.podIP, status.hostIP)"))
	}
	if r := src.ResourceFieldRef; r != nil {
		if !resourceFields[r.Resource] {
			probs = append(probs, valueProblem(d, p+".valueFrom.resourceFieldRef.resource", r.Resource, "must be limits.cpu, limits.memory, requests.cpu or requests.memory"))
		}
		if r.ContainerName != "" {
			found := false
			for _, c := range s.Containers {
				found = found || c.Name == r.ContainerName
			}
			if !found {
				probs = append(probs, valueProblem(d, p+".valueFrom.resourceFieldRef.containerName", r.ContainerName, "no container of that name in the pod"))
			}
		}
	}
	return probs
}

// volumeFieldPaths are the fields a downwardAPI volume file may hold, as
// Kubernetes allows them: node and addresses are for env only.
var volumeFieldPaths = regexp.MustCompile(`^(metadata\.name|metadata\.namespace|metadata\.uid|metadata\.labels|metadata\.annotations|metadata\.labels\['[^']+'\]|metadata\.annotations\['[^']+'\])$`)

func validateDownwardAPI(d *document, s *PodSpec, v *DownwardAPIVolumeSource, p string) []Problem {
	var probs []Problem
	if m := v.DefaultMode; m != nil && (*m < 0 || *m > 0o777) {
		probs = append(probs, valueProblem(d, p+".defaultMode", fmt.Sprint(*m), "must be between 0 and 0777"))
	}
	paths := map[string]bool{}
	for i, it := range v.Items {
		ip := fmt.Sprintf("%s.items[%d]", p, i)
		if it.Path == "" || path.IsAbs(it.Path) || strings.HasPrefix(path.Clean(it.Path), "..") {
			probs = append(probs, valueProblem(d, ip+".path", it.Path, "must be a relative path inside the volume"))
		} else if paths[path.Clean(it.Path)] {
			probs = append(probs, valueProblem(d, ip+".path", it.Path, "duplicate path"))
		}
		paths[path.Clean(it.Path)] = true
		if it.Mode != nil && (*it.Mode < 0 || *it.Mode > 0o777) {
			probs = append(probs, valueProblem(d, ip+".mode", fmt.Sprint(*it.Mode), "must be between 0 and 0777"))
		}
		if (it.FieldRef == nil) == (it.ResourceFieldRef == nil) {
			probs = append(probs, problemAt(d, ip, "must name exactly one of fieldRef and resourceFieldRef"))
		}
		if f := it.FieldRef; f != nil && !volumeFieldPaths.MatchString(f.FieldPath) {
			probs = append(probs, valueProblem(d, ip+".fieldRef.fieldPath", f.FieldPath, "not a supported field (metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels['k'], metadata.annotations['k'])"))
		}
		if r := it.ResourceFieldRef; r != nil {
			if !resourceFields[r.Resource] {
				probs = append(probs, valueProblem(d, ip+".resourceFieldRef.resource", r.Resource, "must be limits.cpu, limits.memory, requests.cpu or requests.memory"))
			}
			found := false
			for _, c := range s.Containers {
				found = found || c.Name == r.ContainerName
			}
			switch {
			case r.ContainerName == "":
				probs = append(probs, problemAt(d, ip+".resourceFieldRef.containerName", "required in a volume"))
			case !found:
				probs = append(probs, valueProblem(d, ip+".resourceFieldRef.containerName", r.ContainerName, "no container of that name in the pod"))
			}
		}
	}
	return probs
}

func validateItems(d *document, items []KeyToPath, mode *int32, p string) []Problem {
	var probs []Problem
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		probs = append(probs, valueProblem(d, p+".defaultMode", fmt.Sprint(*mode), "must be between 0 and 0777"))
	}
	for i, it := range items {
		ip := fmt.Sprintf("%s.items[%d]", p, i)
		probs = append(probs, invalid(d, ip+".key", it.Key, validation.IsConfigMapKey(it.Key))...)
		if it.Path == "" || path.IsAbs(it.Path) || strings.HasPrefix(path.Clean(it.Path), "..") {
			probs = append(probs, valueProblem(d, ip+".path", it.Path, "must be a relative path inside the volume"))
		}
		if it.Mode != nil && (*it.Mode < 0 || *it.Mode > 0o777) {
			probs = append(probs, valueProblem(d, ip+".mode", fmt.Sprint(*it.Mode), "must be between 0 and 0777"))
		}
	}
	return probs
}

// validateSelectorExpressions checks the set-based terms of a label
// selector.
func validateSelectorExpressions(d *document, exprs []LabelSelectorRequirement, field string) []Problem {
	var probs []Problem
	for i, e := range exprs {
		p := fmt.Sprintf("%s.matchExpressions[%d]", field, i)
		if !isQualifiedName(e.Key) {
			probs = append(probs, valueProblem(d, p+".key", e.Key, "must be a qualified name"))
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				probs = append(probs, problemAt(d, p+".values", "required for In and NotIn"))
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) > 0 {
				probs = append(probs, problemAt(d, p+".values", "must be empty for Exists and DoesNotExist"))
			}
		default:
			probs = append(probs, valueProblem(d, p+".operator", e.Operator, "must be In, NotIn, Exists or DoesNotExist"))
		}
	}
	return probs
}

// validateScheduling checks tolerations, affinity and topology spread
// constraints with the rules of the Kubernetes API server.
func validateScheduling(d *document, s *PodSpec, field string) []Problem {
	var probs []Problem
	for i, t := range s.Tolerations {
		p := fmt.Sprintf("%s.tolerations[%d]", field, i)
		if t.Key != "" && !isQualifiedName(t.Key) {
			probs = append(probs, valueProblem(d, p+".key", t.Key, "must be a qualified name"))
		}
		switch t.Operator {
		case "", "Equal":
			if t.Key == "" {
				probs = append(probs, problemAt(d, p+".operator", "must be Exists when key is empty"))
			}
			if !isLabelValue(t.Value) {
				probs = append(probs, valueProblem(d, p+".value", t.Value, "invalid label value: at most 63 characters [-A-Za-z0-9_.], starting and ending alphanumeric"))
			}
		case "Exists":
			if t.Value != "" {
				probs = append(probs, valueProblem(d, p+".value", t.Value, "must be empty when operator is Exists"))
			}
		default:
			probs = append(probs, valueProblem(d, p+".operator", t.Operator, "must be Equal or Exists"))
		}
		switch t.Effect {
		case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			probs = append(probs, valueProblem(d, p+".effect", t.Effect, "must be NoSchedule, PreferNoSchedule or NoExecute"))
		}
	}
	if a := s.Affinity; a != nil {
		if na := a.NodeAffinity; na != nil {
			p := field + ".affinity.nodeAffinity"
			if r := na.Required; r != nil {
				rp := p + ".requiredDuringSchedulingIgnoredDuringExecution"
				if len(r.NodeSelectorTerms) == 0 {
					probs = append(probs, problemAt(d, rp+".nodeSelectorTerms", "must have at least one term"))
				}
				for i, t := range r.NodeSelectorTerms {
					probs = append(probs, validateNodeSelectorTerm(d, t, fmt.Sprintf("%s.nodeSelectorTerms[%d]", rp, i))...)
				}
			}
			for i, t := range na.Preferred {
				tp := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", p, i)
				probs = append(probs, validateWeight(d, t.Weight, tp+".weight")...)
				probs = append(probs, validateNodeSelectorTerm(d, t.Preference, tp+".preference")...)
			}
		}
		probs = append(probs, validatePodAffinity(d, a.PodAffinity, field+".affinity.podAffinity")...)
		probs = append(probs, validatePodAffinity(d, a.PodAntiAffinity, field+".affinity.podAntiAffinity")...)
	}
	seen := map[string]bool{}
	for i, c := range s.TopologySpreadConstraints {
		p := fmt.Sprintf("%s.topologySpreadConstraints[%d]", field, i)
		if c.MaxSkew <= 0 {
			probs = append(probs, valueProblem(d, p+".maxSkew", fmt.Sprint(c.MaxSkew), "must be greater than 0"))
		}
		if c.TopologyKey == "" {
			probs = append(probs, problemAt(d, p+".topologyKey", "required"))
		} else if !isQualifiedName(c.TopologyKey) {
			probs = append(probs, valueProblem(d, p+".topologyKey", c.TopologyKey, "must be a qualified name"))
		}
		switch c.WhenUnsatisfiable {
		case "DoNotSchedule", "ScheduleAnyway":
		case "":
			probs = append(probs, problemAt(d, p+".whenUnsatisfiable", "required (DoNotSchedule or ScheduleAnyway)"))
		default:
			probs = append(probs, valueProblem(d, p+".whenUnsatisfiable", c.WhenUnsatisfiable, "must be DoNotSchedule or ScheduleAnyway"))
		}
		if k := c.TopologyKey + "|" + c.WhenUnsatisfiable; seen[k] {
			probs = append(probs, problemAt(d, p, "duplicate topologyKey and whenUnsatisfiable pair"))
		} else {
			seen[k] = true
		}
		probs = append(probs, validateSelector(d, c.LabelSelector, p+".labelSelector")...)
	}
	return probs
}

func validateSelector(d *document, sel *LabelSelector, field string) []Problem {
	if sel == nil {
		return nil
	}
	probs := validateLabels(d, sel.MatchLabels, field+".matchLabels")
	return append(probs, validateSelectorExpressions(d, sel.MatchExpressions, field)...)
}

func validateWeight(d *document, w int32, field string) []Problem {
	if w < 1 || w > 100 {
		return []Problem{valueProblem(d, field, fmt.Sprint(w), "must be in the range 1-100")}
	}
	return nil
}

func validateNodeSelectorTerm(d *document, t NodeSelectorTerm, field string) []Problem {
	var probs []Problem
	for i, e := range t.MatchExpressions {
		p := fmt.Sprintf("%s.matchExpressions[%d]", field, i)
		if !isQualifiedName(e.Key) {
			probs = append(probs, valueProblem(d, p+".key", e.Key, "must be a qualified name"))
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				probs = append(probs, problemAt(d, p+".values", "required for In and NotIn"))
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) > 0 {
				probs = append(probs, problemAt(d, p+".values", "must be empty for Exists and DoesNotExist"))
			}
		case "Gt", "Lt":
			if len(e.Values) != 1 {
				probs = append(probs, problemAt(d, p+".values", "must have exactly one value for Gt and Lt"))
			} else if _, err := strconv.ParseInt(e.Values[0], 10, 64); err != nil {
				probs = append(probs, valueProblem(d, p+".values[0]", e.Values[0], "must be an integer for Gt and Lt"))
			}
		default:
			probs = append(probs, valueProblem(d, p+".operator", e.Operator, "must be In, NotIn, Exists, DoesNotExist, Gt or Lt"))
		}
	}
	for i, e := range t.MatchFields {
		p := fmt.Sprintf("%s.matchFields[%d]", field, i)
		if e.Key != "metadata.name" {
			probs = append(probs, valueProblem(d, p+".key", e.Key, "must be metadata.name"))
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) != 1 {
				probs = append(probs, problemAt(d, p+".values", "must have exactly one value"))
			}
		default:
			probs = append(probs, valueProblem(d, p+".operator", e.Operator, "must be In or NotIn"))
		}
	}
	return probs
}

func validatePodAffinity(d *document, a *PodAffinity, field string) []Problem {
	if a == nil {
		return nil
	}
	var probs []Problem
	for i, t := range a.Required {
		probs = append(probs, validatePodAffinityTerm(d, t, fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution[%d]", field, i))...)
	}
	for i, t := range a.Preferred {
		p := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", field, i)
		probs = append(probs, validateWeight(d, t.Weight, p+".weight")...)
		probs = append(probs, validatePodAffinityTerm(d, t.PodAffinityTerm, p+".podAffinityTerm")...)
	}
	return probs
}

func validatePodAffinityTerm(d *document, t PodAffinityTerm, field string) []Problem {
	var probs []Problem
	if t.TopologyKey == "" {
		probs = append(probs, problemAt(d, field+".topologyKey", "required"))
	} else if !isQualifiedName(t.TopologyKey) {
		probs = append(probs, valueProblem(d, field+".topologyKey", t.TopologyKey, "must be a qualified name"))
	}
	for i, ns := range t.Namespaces {
		if !isDNS1123Label(ns) {
			probs = append(probs, invalid(d, fmt.Sprintf("%s.namespaces[%d]", field, i), ns, validation.IsDNS1123Label(ns))...)
		}
	}
	return append(probs, validateSelector(d, t.LabelSelector, field+".labelSelector")...)
}
