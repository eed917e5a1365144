package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"driftless.dev/driftless/manifest"
)

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
		case v.EmptyDir != nil || v.Ephemeral != nil:
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
			if v.EmptyDir != nil && v.EmptyDir.Medium == "Memory" && !isMountPoint(dir) {
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
		case v.Projected != nil:
			dir := filepath.Join(r.podDir(d.Workload, d.Index), "volumes", v.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			files, secret, err := r.projectedVolumeFiles(d, v.Projected)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			if secret && !isMountPoint(dir) {
				if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755"); err != nil {
					return nil, fmt.Errorf("volume %s: mount tmpfs: %w", v.Name, err)
				}
			}
			if err := writeFiles(dir, files, 0); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			out[v.Name] = dir
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

// cleanupPods removes the volume directories and network namespaces of
// replicas that are neither desired nor have containers left, including
// those an earlier agent left behind.
func (r *Reconciler) cleanupPods(ctx context.Context, desired []DesiredReplica, actual []Container) {
	r.sweepPIDNamespaces(ctx)
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

// pidNamespaceSweeper is a runtime that keeps holders of shared process
// namespaces and can remove those that no container joins any more.
type pidNamespaceSweeper interface {
	SweepPIDNamespaces(ctx context.Context) error
}

// sweepPIDNamespaces asks the runtime, at most once a minute, to remove
// the holders an agent killed at the wrong moment left behind.
func (r *Reconciler) sweepPIDNamespaces(ctx context.Context) {
	s, ok := r.cfg.Runtime.(pidNamespaceSweeper)
	if !ok {
		return
	}
	now := r.cfg.Now()
	if now.Sub(r.lastPIDSweep) < time.Minute {
		return
	}
	r.lastPIDSweep = now
	if err := r.call(ctx, s.SweepPIDNamespaces); err != nil {
		r.log.Warn("sweep process namespace holders", "err", err)
	}
}
