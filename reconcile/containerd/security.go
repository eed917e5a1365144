package containerd

import (
	"fmt"
	"strconv"
	"strings"

	"context"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"driftless.dev/driftless/reconcile"
)

// securityOpts maps a container's security settings to the OCI spec. It
// refuses (reconcile.ErrInvalidSpec) a runAsNonRoot container that would
// run as root, as the kubelet does.
func securityOpts(sec reconcile.Security, ic ocispec.ImageConfig) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if sec.RunAsNonRoot {
		if sec.RunAsUser == nil {
			uid, known := imageUID(ic.User)
			switch {
			case !known:
				return nil, fmt.Errorf("%w: runAsNonRoot and the image has a non-numeric user (%s): cannot verify the user is not root", reconcile.ErrInvalidSpec, ic.User)
			case uid == 0:
				return nil, fmt.Errorf("%w: runAsNonRoot and the image will run as root; set runAsUser", reconcile.ErrInvalidSpec)
			}
		} else if *sec.RunAsUser == 0 {
			return nil, fmt.Errorf("%w: runAsNonRoot and runAsUser is 0", reconcile.ErrInvalidSpec)
		}
	}
	switch {
	case sec.RunAsUser != nil && sec.RunAsGroup != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*sec.RunAsUser), uint32(*sec.RunAsGroup)))
	case sec.RunAsUser != nil:
		opts = append(opts, oci.WithUserID(uint32(*sec.RunAsUser)))
	case sec.RunAsGroup != nil:
		// The image's user with another primary group.
		opts = append(opts, withGID(uint32(*sec.RunAsGroup)))
	}
	if len(sec.SupplementalGroups) > 0 {
		opts = append(opts, withExtraGIDs(sec.SupplementalGroups))
	}
	if sec.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	} else {
		if drop := capNames(sec.CapDrop); len(drop) > 0 {
			if containsAll(sec.CapDrop) {
				opts = append(opts, oci.WithCapabilities(nil))
			} else {
				opts = append(opts, oci.WithDroppedCapabilities(drop))
			}
		}
		if containsAll(sec.CapAdd) {
			opts = append(opts, oci.WithAllKnownCapabilities)
		} else if add := capNames(sec.CapAdd); len(add) > 0 {
			opts = append(opts, oci.WithAddedCapabilities(add))
		}
		if sec.Seccomp == "RuntimeDefault" {
			opts = append(opts, seccomp.WithDefaultProfile())
		}
	}
	if sec.AllowPrivilegeEscalation != nil && !*sec.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNoNewPrivileges)
	} else {
		opts = append(opts, oci.WithNewPrivileges)
	}
	return opts, nil
}

// imageUID reads the uid of an image's user ("", "0", "1000:1000",
// "root"); known is false for a name other than root.
func imageUID(user string) (uid int64, known bool) {
	u, _, _ := strings.Cut(user, ":")
	switch u {
	case "", "root":
		return 0, true
	}
	n, err := strconv.ParseInt(u, 10, 64)
	return n, err == nil
}

func capNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n == "ALL" {
			continue
		}
		out = append(out, "CAP_"+strings.TrimPrefix(n, "CAP_"))
	}
	if containsAll(names) && len(out) == 0 {
		return []string{"ALL"}
	}
	return out
}

func containsAll(names []string) bool {
	for _, n := range names {
		if n == "ALL" {
			return true
		}
	}
	return false
}

func withGID(gid uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.User.GID = gid
		return nil
	}
}

func withExtraGIDs(gids []int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		for _, g := range gids {
			s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
		}
		return nil
	}
}
