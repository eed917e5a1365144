package reconcile

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/manifest"
)

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
		Runtime:     d.Runtime,
		LogPath:     logPath,
	}
	if d.Pod.ShareProcessNamespace != nil && *d.Pod.ShareProcessNamespace {
		spec.SharePIDNamespace = r.attachmentID(filepath.Base(r.podDir(d.Workload, d.Index)))
		spec.Labels[LabelPIDNS] = spec.SharePIDNamespace
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
	// Each value may name the variables before it as $(NAME), and the
	// command, args and subPathExpr every variable, as in Kubernetes.
	pos := map[string]int{}
	vars := map[string]string{}
	for _, e := range env {
		val := expand(e[1], vars)
		vars[e[0]] = val
		kv := e[0] + "=" + val
		if i, ok := pos[e[0]]; ok {
			spec.Env[i] = kv
			continue
		}
		pos[e[0]] = len(spec.Env)
		spec.Env = append(spec.Env, kv)
	}
	spec.Command, spec.Args = expandAll(spec.Command, vars), expandAll(spec.Args, vars)
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
		sp := m.SubPath
		if m.SubPathExpr != "" {
			sp = expand(m.SubPathExpr, vars)
			if filepath.IsAbs(sp) || strings.HasPrefix(filepath.Clean(sp), "..") {
				return spec, fmt.Errorf("container %s: subPathExpr %s expands to %q, outside the volume", c.Name, m.SubPathExpr, sp)
			}
		}
		if sp != "" {
			src = filepath.Join(src, sp)
			if _, err := os.Stat(src); err != nil {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return spec, fmt.Errorf("container %s: subPath %s: %w", c.Name, sp, err)
				}
			}
		}
		ro := m.ReadOnly
		for _, v := range d.Pod.Volumes {
			if v.Name == m.Name && (v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil ||
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
		s.CapAdd, s.CapDrop = upper(c.Capabilities.Add), upper(c.Capabilities.Drop)
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

// upper is capability names as runtimes read them: in upper case.
func upper(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToUpper(n)
	}
	return out
}
