package leader

import (
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/status"
)

// inventory merges gossip, the branch and the Node policies into the
// scheduler's view and the nodes/ files. A node gossip calls dead keeps
// its replicas for NodeGrace (cordoned meanwhile), then loses them; dead
// records when each was first seen dead and is updated in place.
func inventory(cur *status.State, in Input, policies []manifest.Node, dead map[string]time.Time) ([]scheduler.Node, map[string]status.NodeStatus) {
	files := map[string]status.NodeStatus{}
	for name, ns := range cur.Nodes {
		files[name] = ns
	}
	if in.Members != nil {
		seen := map[string]bool{}
		for _, m := range in.Members {
			seen[m.Name] = true
			ns := files[m.Name]
			ns.SchemaVersion = status.SchemaVersion
			ns.Name = m.Name
			ns.Labels = wellKnownLabels(m.Labels, m.Arch)
			if m.SigningKey != "" {
				ns.SigningKey = m.SigningKey
			}
			if m.Address != "" {
				ns.Address = m.Address
			}
			ns.PeerAddress = m.Peer
			ns.Capacity = map[string]string{}
			if m.CPUMilli > 0 {
				ns.Capacity["cpu"] = resource.NewMilliQuantity(m.CPUMilli, resource.DecimalSI).String()
			}
			if m.MemoryBytes > 0 {
				// Whole MiB: capacity is for people to read and the
				// scheduler to compare; a byte count like 24684092Ki
				// helps neither.
				ns.Capacity["memory"] = resource.NewQuantity(m.MemoryBytes/(1<<20)*(1<<20), resource.BinarySI).String()
			}
			if m.VolumesBytes > 0 {
				ns.Capacity[scheduler.ResourceVolumes] = resource.NewQuantity(m.VolumesBytes/(1<<20)*(1<<20), resource.BinarySI).String()
			}
			if len(ns.Capacity) == 0 {
				ns.Capacity = nil
			}
			if r, ok := in.Reports[m.Name]; ok {
				ns.DesiredCommitReached = r.Reached
			}
			if m.Alive {
				ns.State = status.NodeAlive
				delete(dead, m.Name)
			} else {
				ns.State = status.NodeDead
			}
			files[m.Name] = ns
		}
		for name, ns := range files {
			if !seen[name] && ns.State == status.NodeAlive {
				ns.State = status.NodeDead
				files[name] = ns
			}
		}
	}
	nodes := SchedulerNodes(files, policies, func(name string) (bool, bool) {
		since, ok := dead[name]
		if !ok {
			since = in.Now
			dead[name] = since
		}
		// Within the grace a dead node keeps its replicas, cordoned.
		return in.Now.Sub(since) < in.NodeGrace, true
	})
	stampTaints(nodes, files, in.JobNow)
	// Forget nodes that are gone from the branch altogether.
	for name := range dead {
		if _, ok := files[name]; !ok {
			delete(dead, name)
		}
	}
	return nodes, files
}

// SchedulerNodes turns the status branch's nodes and the Node policies of
// the desired commit into the scheduler's view. Nodes a policy marks
// removed (and that are not alive) are dropped from files. notAlive says,
// for a node that is not alive, whether it still counts as alive and
// whether it is then cordoned (the grace period); nil means dead.
func SchedulerNodes(files map[string]status.NodeStatus, policies []manifest.Node, notAlive func(name string) (alive, cordoned bool)) []scheduler.Node {
	var nodes []scheduler.Node
	for _, name := range sortedKeys(files) {
		ns := files[name]
		for _, pol := range policies {
			if pol.Metadata.Name == name && pol.Spec.Removed && ns.State != status.NodeAlive {
				ns.State = status.NodeRemoved
				files[name] = ns
			}
		}
		if ns.State == status.NodeRemoved {
			delete(files, name)
			continue
		}
		n := scheduler.Node{Name: name, Labels: map[string]string{}, Alive: ns.State == status.NodeAlive}
		for k, v := range ns.Labels {
			n.Labels[k] = v
		}
		n.Labels["kubernetes.io/hostname"] = name
		if !n.Alive && notAlive != nil {
			n.Alive, n.Unschedulable = notAlive(name)
			n.Unschedulable = n.Unschedulable && n.Alive
		}
		for _, pol := range policies {
			if pol.Metadata.Name != name {
				continue
			}
			n.Unschedulable = n.Unschedulable || pol.Spec.Unschedulable
			// A drain cordons the node and evicts what is not a
			// DaemonSet's, as far as the disruption budgets allow.
			if pol.Metadata.Annotations[manifest.AnnotationDrain] == "true" {
				n.Unschedulable, n.Draining = true, true
			}
			n.Taints = pol.Spec.Taints
			for k, v := range pol.Spec.Labels {
				n.Labels[k] = v
			}
		}
		for _, r := range []string{"cpu", "memory", scheduler.ResourceVolumes} {
			if c, ok := ns.Capacity[r]; ok {
				if q, err := resource.ParseQuantity(c); err == nil {
					if n.Allocatable == nil {
						n.Allocatable = map[string]resource.Quantity{}
					}
					n.Allocatable[r] = q
				}
			}
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wellKnownLabels are a node's labels with those every Kubernetes node
// has and manifests select on (kubernetes.io/os, kubernetes.io/arch and
// their beta. forms), unless its own labels set them.
func wellKnownLabels(labels map[string]string, arch string) map[string]string {
	out := make(map[string]string, len(labels)+4)
	for _, k := range []string{"kubernetes.io/os", "beta.kubernetes.io/os"} {
		out[k] = "linux"
	}
	if arch != "" {
		for _, k := range []string{"kubernetes.io/arch", "beta.kubernetes.io/arch"} {
			out[k] = arch
		}
	}
	for k, v := range labels {
		out[k] = v
	}
	return out
}

// stampTaints gives each NoExecute taint of the nodes the time it took
// effect: the policy's timeAdded, else the time recorded on the node's
// file when a leader first saw it, else now; and records them there. A
// taint that is gone is forgotten (back later, it counts from then).
func stampTaints(nodes []scheduler.Node, files map[string]status.NodeStatus, now time.Time) {
	for i := range nodes {
		n := &nodes[i]
		ns, ok := files[n.Name]
		if !ok {
			continue
		}
		var rec []manifest.Taint
		taints := make([]manifest.Taint, len(n.Taints))
		copy(taints, n.Taints)
		for j, t := range taints {
			if t.Effect != "NoExecute" {
				continue
			}
			if t.TimeAdded == nil {
				at := now.UTC().Truncate(time.Second)
				for _, old := range ns.Taints {
					if old.Key == t.Key && old.Value == t.Value && old.Effect == t.Effect && old.TimeAdded != nil {
						at = *old.TimeAdded
					}
				}
				t.TimeAdded = &at
				taints[j] = t
			}
			rec = append(rec, t)
		}
		n.Taints = taints
		ns.Taints = rec
		files[n.Name] = ns
	}
}
