package reconcile

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/internal/atomicfile"
	"driftless.dev/driftless/manifest"
)

var validEnvName = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// resolveEnv returns the container's environment as name/value pairs:
// envFrom sources first, then env (valueFrom resolved). Missing optional
// sources are skipped; a missing required one is an error worded as
// Kubernetes words it (the replica stays Pending with
// CreateContainerConfigError until a commit adds it).
func (r *Reconciler) resolveEnv(d DesiredReplica, c manifest.Container) ([][2]string, error) {
	var out [][2]string
	for _, ef := range c.EnvFrom {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := d.ConfigMaps[ef.ConfigMapRef.Name]
			if !ok {
				if optional(ef.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %s: %w", c.Name, missingObject("configmap", ef.ConfigMapRef.Name))
			}
			data = cm.Data
		case ef.SecretRef != nil:
			s, ok := d.Secrets[ef.SecretRef.Name]
			if !ok {
				if optional(ef.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %s: %w", c.Name, missingObject("secret", ef.SecretRef.Name))
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if name := ef.Prefix + k; validEnvName.MatchString(name) {
				out = append(out, [2]string{name, data[k]})
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out = append(out, [2]string{e.Name, e.Value})
			continue
		}
		v, ok, err := r.envValue(d, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("container %s: env %s: %w", c.Name, e.Name, err)
		}
		if ok {
			out = append(out, [2]string{e.Name, v})
		}
	}
	return out, nil
}

func optional(b *bool) bool { return b != nil && *b }

// missingObject is the error for a required ConfigMap or Secret absent
// from the commit, in Kubernetes' words (`configmap "cfg" not found`).
func missingObject(kind, name string) error {
	return fmt.Errorf("%s %q not found", kind, name)
}

// missingKey is the error for a required key absent from a ConfigMap or
// Secret, in Kubernetes' words.
func missingKey(kind, namespace, name, key string) error {
	return fmt.Errorf("couldn't find key %s in %s %s/%s", key, kind, namespace, name)
}

// envValue resolves one valueFrom; ok is false for a missing optional key.
func (r *Reconciler) envValue(d DesiredReplica, c manifest.Container, src *manifest.EnvVarSource) (string, bool, error) {
	switch {
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, ok := d.ConfigMaps[ref.Name]
		if ok {
			if v, ok := cm.Data[ref.Key]; ok {
				return v, true, nil
			}
			if v, ok := cm.BinaryData[ref.Key]; ok {
				return string(v), true, nil
			}
		}
		switch {
		case optional(ref.Optional):
			return "", false, nil
		case !ok:
			return "", false, missingObject("configmap", ref.Name)
		}
		return "", false, missingKey("ConfigMap", d.Workload.Namespace, ref.Name, ref.Key)
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, ok := d.Secrets[ref.Name]
		if ok {
			if v, ok := s.Data[ref.Key]; ok {
				return string(v), true, nil
			}
		}
		switch {
		case optional(ref.Optional):
			return "", false, nil
		case !ok:
			return "", false, missingObject("secret", ref.Name)
		}
		return "", false, missingKey("Secret", d.Workload.Namespace, ref.Name, ref.Key)
	case src.FieldRef != nil:
		return r.fieldValue(d, src.FieldRef.FieldPath)
	case src.ResourceFieldRef != nil:
		return resourceValue(d, c, src.ResourceFieldRef)
	}
	return "", false, errors.New("empty valueFrom")
}

// fieldValue resolves the downward API fields of a replica. status.podIP
// is the address the replica's network gave it (the host's with
// hostNetwork), 127.0.0.1 when its network gives none (loopback only).
func (r *Reconciler) fieldValue(d DesiredReplica, path string) (string, bool, error) {
	switch path {
	case "metadata.name":
		return podName(d), true, nil
	case "metadata.namespace":
		return d.Workload.Namespace, true, nil
	case "metadata.uid":
		return ContainerID(d.Workload, d.Index, "", d.SpecHash), true, nil
	case "spec.nodeName":
		return r.cfg.Node, true, nil
	case "spec.serviceAccountName":
		return "default", true, nil
	case "status.hostIP", "status.hostIPs":
		return r.hostIP(), true, nil
	case "status.podIP", "status.podIPs":
		if ip := r.podIP(d); ip != "" {
			return ip, true, nil
		}
		return "127.0.0.1", true, nil
	}
	for _, f := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels['", d.Labels}, {"metadata.annotations['", d.Annotations}} {
		if strings.HasPrefix(path, f.prefix) && strings.HasSuffix(path, "']") {
			return f.m[strings.TrimSuffix(strings.TrimPrefix(path, f.prefix), "']")], true, nil
		}
	}
	return "", false, fmt.Errorf("unsupported fieldPath %q", path)
}

// hostIP is the node's address: Config.HostIP, else HostIP.
func (r *Reconciler) hostIP() string {
	if r.cfg.HostIP != "" {
		return r.cfg.HostIP
	}
	return HostIP()
}

// HostIP is the host's first non-loopback IPv4 address (127.0.0.1 when
// it has none).
func HostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
				return ip.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// resourceValue is a container's limit or request divided by the divisor
// (rounded up), the node's capacity when no limit is set, as Kubernetes.
func resourceValue(d DesiredReplica, c manifest.Container, ref *manifest.ResourceFieldSelector) (string, bool, error) {
	if ref.ContainerName != "" {
		for _, x := range d.Pod.Containers {
			if x.Name == ref.ContainerName {
				c = x
			}
		}
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[name]
	if !ok {
		switch name {
		case "cpu":
			q = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI)
		case "memory":
			q = *resource.NewQuantity(HostMemory(), resource.BinarySI)
		default:
			q = resource.Quantity{}
		}
	}
	div := resource.MustParse("1")
	if ref.Divisor != nil && !ref.Divisor.IsZero() {
		div = *ref.Divisor
	}
	var v int64
	if name == "cpu" {
		v = int64(math.Ceil(float64(q.MilliValue()) / float64(div.MilliValue())))
	} else {
		v = int64(math.Ceil(float64(q.Value()) / float64(div.Value())))
	}
	return strconv.FormatInt(v, 10), true, nil
}

// HostMemory is the host's memory in bytes (0 if unknown).
func HostMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// projectedFiles returns the files of a configMap or secret volume and
// their default mode. A missing source or item key is an error unless the
// volume is optional.
func projectedFiles(d DesiredReplica, v manifest.Volume) (map[string]fileContent, os.FileMode, error) {
	data := map[string][]byte{}
	var items []manifest.KeyToPath
	var defMode *int32
	var opt bool
	var kind, name string
	switch {
	case v.ConfigMap != nil:
		opt, kind, name = optional(v.ConfigMap.Optional), "ConfigMap", v.ConfigMap.Name
		cm, ok := d.ConfigMaps[v.ConfigMap.Name]
		if !ok && !opt {
			return nil, 0, missingObject("configmap", v.ConfigMap.Name)
		}
		for k, s := range cm.Data {
			data[k] = []byte(s)
		}
		for k, b := range cm.BinaryData {
			data[k] = b
		}
		items, defMode = v.ConfigMap.Items, v.ConfigMap.DefaultMode
	case v.Secret != nil:
		opt, kind, name = optional(v.Secret.Optional), "Secret", v.Secret.SecretName
		s, ok := d.Secrets[v.Secret.SecretName]
		if !ok && !opt {
			return nil, 0, missingObject("secret", v.Secret.SecretName)
		}
		for k, b := range s.Data {
			data[k] = b
		}
		items, defMode = v.Secret.Items, v.Secret.DefaultMode
	}
	mode := os.FileMode(0o644)
	if defMode != nil {
		mode = os.FileMode(*defMode)
	}
	out := map[string]fileContent{}
	if len(items) == 0 {
		for k, b := range data {
			out[k] = fileContent{data: b, mode: mode}
		}
		return out, mode, nil
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			if opt {
				continue
			}
			return nil, 0, missingKey(kind, d.Workload.Namespace, name, it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[filepath.Clean(it.Path)] = fileContent{data: b, mode: m}
	}
	return out, mode, nil
}

// downwardAPIFiles returns the files of a downwardAPI volume. A whole
// labels or annotations map is written as Kubernetes does: one key="value"
// line per key, sorted, values quoted.
func (r *Reconciler) downwardAPIFiles(d DesiredReplica, v *manifest.DownwardAPIVolumeSource) (map[string]fileContent, os.FileMode, error) {
	mode := os.FileMode(0o644)
	if v.DefaultMode != nil {
		mode = os.FileMode(*v.DefaultMode)
	}
	out := map[string]fileContent{}
	for _, it := range v.Items {
		var val string
		var err error
		switch {
		case it.FieldRef != nil && it.FieldRef.FieldPath == "metadata.labels":
			val = formatMap(d.Labels)
		case it.FieldRef != nil && it.FieldRef.FieldPath == "metadata.annotations":
			val = formatMap(d.Annotations)
		case it.FieldRef != nil:
			val, _, err = r.fieldValue(d, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			c := manifest.Container{}
			if len(d.Pod.Containers) > 0 {
				c = d.Pod.Containers[0]
			}
			val, _, err = resourceValue(d, c, it.ResourceFieldRef)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("item %s: %w", it.Path, err)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[filepath.Clean(it.Path)] = fileContent{data: []byte(val), mode: m}
	}
	return out, mode, nil
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

type fileContent struct {
	data []byte
	mode os.FileMode
}

// writeFiles makes dir hold exactly files (atomic per file), removing
// files of an older content.
func writeFiles(dir string, files map[string]fileContent, _ os.FileMode) error {
	keep := map[string]bool{}
	for rel, f := range files {
		p := filepath.Join(dir, rel)
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("path %q leaves the volume", rel)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		keep[p] = true
	}
	return filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || keep[p] {
			return nil
		}
		return os.Remove(p)
	})
}

// projectedVolumeFiles merges the files of a projected volume's sources,
// in order (a later source's file of the same path wins, as in
// Kubernetes); it reports whether a Secret is among them (tmpfs).
func (r *Reconciler) projectedVolumeFiles(d DesiredReplica, v *manifest.ProjectedVolumeSource) (map[string]fileContent, bool, error) {
	out := map[string]fileContent{}
	secret := false
	for _, src := range v.Sources {
		var files map[string]fileContent
		var err error
		switch {
		case src.ConfigMap != nil:
			c := src.ConfigMap
			files, _, err = projectedFiles(d, manifest.Volume{ConfigMap: &manifest.ConfigMapVolumeSource{Name: c.Name, Items: c.Items, Optional: c.Optional, DefaultMode: v.DefaultMode}})
		case src.Secret != nil:
			c := src.Secret
			secret = true
			files, _, err = projectedFiles(d, manifest.Volume{Secret: &manifest.SecretVolumeSource{SecretName: c.Name, Items: c.Items, Optional: c.Optional, DefaultMode: v.DefaultMode}})
		case src.DownwardAPI != nil:
			files, _, err = r.downwardAPIFiles(d, &manifest.DownwardAPIVolumeSource{Items: src.DownwardAPI.Items, DefaultMode: v.DefaultMode})
		}
		if err != nil {
			return nil, false, err
		}
		for p, f := range files {
			out[p] = f
		}
	}
	return out, secret, nil
}
