package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"driftless.dev/driftless/manifest"
)

// Difference kinds of Compare.
const (
	DiffMissing = "missing" // desired, no container
	DiffExtra   = "extra"   // a container of driftless's, not desired
	DiffSpec    = "spec"    // the container runs another template
)

// Difference is one container where the node differs from its desired
// replicas.
type Difference struct {
	Kind      string       `json:"kind"`
	Workload  manifest.Ref `json:"workload"`
	Index     int          `json:"index"`
	Container string       `json:"container"`
	// Want and Have are the spec hashes desired and running.
	Want string `json:"want,omitempty"`
	Have string `json:"have,omitempty"`
	// ID is the container's id when it exists; State its state.
	ID    string `json:"id,omitempty"`
	State string `json:"state,omitempty"`
}

// Compare lists, container by container, how actual differs from
// desired: containers missing, containers not desired, containers of
// another template. Replicas held (their commit not loaded) and finished
// Job replicas are left out. Pure.
func Compare(desired []DesiredReplica, actual []Container) []Difference {
	type slot struct {
		ref       manifest.Ref
		index     int
		container string
	}
	have := map[slot][]Container{}
	for _, c := range actual {
		idx, err := strconv.Atoi(c.Labels[LabelReplica])
		if err != nil {
			continue
		}
		s := slot{manifest.Ref{Namespace: c.Labels[LabelNamespace], Kind: c.Labels[LabelKind], Name: c.Labels[LabelWorkload]}, idx, c.Labels[LabelContainer]}
		have[s] = append(have[s], c)
	}
	var out []Difference
	want := map[slot]bool{}
	for _, d := range desired {
		all := append(append([]manifest.Container(nil), d.Pod.InitContainers...), d.Pod.Containers...)
		for _, c := range all {
			s := slot{d.Workload, d.Index, c.Name}
			want[s] = true
			if d.Held != "" || d.Finished {
				continue
			}
			cs := have[s]
			match := false
			for _, a := range cs {
				if a.Labels[LabelSpecHash] == d.SpecHash {
					match = true
				}
			}
			switch {
			case match:
			case len(cs) == 0:
				out = append(out, Difference{Kind: DiffMissing, Workload: d.Workload, Index: d.Index, Container: c.Name, Want: d.SpecHash})
			default:
				out = append(out, Difference{Kind: DiffSpec, Workload: d.Workload, Index: d.Index, Container: c.Name, Want: d.SpecHash,
					Have: cs[0].Labels[LabelSpecHash], ID: cs[0].ID, State: string(cs[0].State)})
			}
		}
	}
	for s, cs := range have {
		if want[s] {
			continue
		}
		for _, a := range cs {
			out = append(out, Difference{Kind: DiffExtra, Workload: s.ref, Index: s.index, Container: s.container, Have: a.Labels[LabelSpecHash], ID: a.ID, State: string(a.State)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Workload != b.Workload {
			return a.Workload.String() < b.Workload.String()
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		return a.ID < b.ID
	})
	return out
}

// Differences lists the containers on this node against desired, reading
// them from the runtime within its call deadline.
func (r *Reconciler) Differences(ctx context.Context, desired []DesiredReplica) ([]Difference, error) {
	var actual []Container
	err := r.call(ctx, func(ctx context.Context) error {
		var err error
		actual, err = r.cfg.Runtime.List(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return Compare(desired, actual), nil
}
