package manifest

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

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
	if n := s.SchedulerName; n != "" && n != "default-scheduler" {
		probs = append(probs, valueProblem(d, field+".schedulerName", n, "driftless places every replica itself: only default-scheduler (or none)"))
	}
	if p := s.PreemptionPolicy; p != nil && *p != "PreemptLowerPriority" && *p != "Never" {
		probs = append(probs, valueProblem(d, field+".preemptionPolicy", *p, "must be PreemptLowerPriority or Never"))
	}
	if s.ShareProcessNamespace != nil && *s.ShareProcessNamespace && s.HostPID {
		probs = append(probs, problemAt(d, field+".shareProcessNamespace", "cannot be true with hostPID: the host's process namespace is not the pod's to share"))
	}
	if s.NodeName != "" {
		probs = append(probs, invalid(d, field+".nodeName", s.NodeName, validation.IsDNS1123Subdomain(s.NodeName))...)
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
		if e := v.Ephemeral; e != nil {
			n++
			if e.VolumeClaimTemplate == nil {
				probs = append(probs, problemAt(d, p+".ephemeral.volumeClaimTemplate", "required"))
			} else {
				ct := e.VolumeClaimTemplate
				_, cp := claimOf(d, ct.Metadata, &ct.Spec, p+".ephemeral.volumeClaimTemplate.spec")
				probs = append(probs, cp...)
				for i, m := range ct.Spec.AccessModes {
					if m == ReadWriteMany || m == ReadOnlyMany {
						probs = append(probs, valueProblem(d, fmt.Sprintf("%s.ephemeral.volumeClaimTemplate.spec.accessModes[%d]", p, i), m, "an ephemeral volume is its replica's own directory: ReadWriteOnce"))
					}
				}
			}
		}
		if v.Projected != nil {
			n++
			probs = append(probs, validateProjected(d, s, v.Projected, p+".projected")...)
		}
		if v.PersistentVolumeClaim != nil {
			n++
			probs = append(probs, validateClaimVolume(d, &v, p)...)
		}
		if v.HostPath != nil {
			n++
			if !isAbsPath(s, v.HostPath.Path) {
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
			probs = append(probs, problemAt(d, p, "must specify a volume source (emptyDir, hostPath, configMap, secret, downwardAPI, projected, ephemeral or persistentVolumeClaim)"))
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
	if c.WorkingDir != "" && !isAbsPath(s, c.WorkingDir) {
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
		if !isAbsPath(s, m.MountPath) {
			probs = append(probs, valueProblem(d, mp+".mountPath", m.MountPath, "must be an absolute path"))
		} else if mounts[path.Clean(m.MountPath)] {
			probs = append(probs, valueProblem(d, mp+".mountPath", m.MountPath, "mounted twice"))
		}
		mounts[path.Clean(m.MountPath)] = true
		if m.SubPath != "" && m.SubPathExpr != "" {
			probs = append(probs, problemAt(d, mp+".subPathExpr", "subPath and subPathExpr are mutually exclusive"))
		}
		if m.SubPathExpr != "" && (path.IsAbs(m.SubPathExpr) || strings.HasPrefix(path.Clean(m.SubPathExpr), "..")) {
			probs = append(probs, valueProblem(d, mp+".subPathExpr", m.SubPathExpr, "must be a relative path inside the volume"))
		}
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

func validateProjected(d *document, s *PodSpec, v *ProjectedVolumeSource, p string) []Problem {
	var probs []Problem
	if m := v.DefaultMode; m != nil && (*m < 0 || *m > 0o777) {
		probs = append(probs, valueProblem(d, p+".defaultMode", fmt.Sprint(*m), "must be a file mode between 0 and 0777"))
	}
	for i, src := range v.Sources {
		sp := fmt.Sprintf("%s.sources[%d]", p, i)
		n := 0
		if c := src.ConfigMap; c != nil {
			n++
			if c.Name == "" {
				probs = append(probs, problemAt(d, sp+".configMap.name", "required"))
			}
			probs = append(probs, validateItems(d, c.Items, nil, sp+".configMap")...)
		}
		if c := src.Secret; c != nil {
			n++
			if c.Name == "" {
				probs = append(probs, problemAt(d, sp+".secret.name", "required"))
			}
			probs = append(probs, validateItems(d, c.Items, nil, sp+".secret")...)
		}
		if c := src.DownwardAPI; c != nil {
			n++
			probs = append(probs, validateDownwardAPI(d, s, &DownwardAPIVolumeSource{Items: c.Items}, sp+".downwardAPI")...)
		}
		if c := src.ServiceAccountToken; c != nil {
			n++
			if c.Path == "" {
				probs = append(probs, problemAt(d, sp+".serviceAccountToken.path", "required"))
			}
		}
		switch {
		case n == 0:
			probs = append(probs, problemAt(d, sp, "must specify one source (configMap, secret, downwardAPI or serviceAccountToken)"))
		case n > 1:
			probs = append(probs, problemAt(d, sp, "may not specify more than one source"))
		}
	}
	return probs
}

// WindowsPod reports whether a pod is for Windows nodes (spec.os.name, or
// a nodeSelector on kubernetes.io/os): accepted, as Kubernetes does, and
// never placed on driftless's Linux nodes.
func (s *PodSpec) WindowsPod() bool {
	return (s.OS != nil && s.OS.Name == "windows") || s.NodeSelector["kubernetes.io/os"] == "windows" || s.NodeSelector["beta.kubernetes.io/os"] == "windows"
}

// isAbsPath is an absolute path as the pod's OS reads it (C:\... for a
// Windows pod).
func isAbsPath(s *PodSpec, p string) bool {
	if path.IsAbs(p) {
		return true
	}
	if s.WindowsPod() && len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') && ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) {
		return true
	}
	return s.WindowsPod() && strings.HasPrefix(p, "\\\\")
}
