// Package volumes decides where persistent volume claims live: a claim is
// bound, on first use, to the node its first replica is placed on (a
// directory under that node's volumes directory) or, for a claim of a
// shared host-path class, to a directory of that path every node mounts.
// The bindings are records of the status branch, so every agent and
// every later leader sees them. Pure: no I/O, no clock.
//
// It must never drop the binding of a claim whose data may exist: a claim
// removed from Git is Released (its record and its directory stay), and
// it gets the same directory back when a commit brings it back.
package volumes

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

// Phase is a binding's state.
type Phase string

// The phases of a binding, as Kubernetes names a claim's.
const (
	// Bound: a claim of the desired commit uses the directory.
	Bound Phase = "Bound"
	// Released: no claim of the desired commit has this name any more;
	// the data is kept (a commit that brings the claim back gets it).
	Released Phase = "Released"
	// Deleting: the claim is gone, its reclaim policy is Delete and no
	// replica uses it: its node deletes the directory. The record stays
	// as the tombstone of the data; a claim of that name bound again
	// gets a new directory.
	Deleting Phase = "Deleting"
)

// Binding is volumes/<namespace>/<claim>.yaml on the status branch.
type Binding struct {
	// Claim names the claim (Kind PersistentVolumeClaim).
	Claim manifest.Ref `json:"claim"`
	// Node holds the data; empty for a claim on shared storage.
	Node string `json:"node,omitempty"`
	// Path is the directory: relative to the node's volumes directory
	// for a node-local claim, absolute on shared storage.
	Path string `json:"path"`
	// Storage is the size the claim requests.
	Storage     string   `json:"storage"`
	AccessModes []string `json:"accessModes"`
	// StorageClass is the claim's class ("" for none).
	StorageClass string `json:"storageClass,omitempty"`
	Phase        Phase  `json:"phase"`
	// DesiredCommit is the desired commit in force when the claim was
	// bound.
	DesiredCommit string `json:"desiredCommit"`
	// ReclaimPolicy is what becomes of the data once the claim is gone:
	// Retain (kept, Released) or Delete.
	ReclaimPolicy string `json:"reclaimPolicy,omitempty"`
	// UsedBy is the workload whose replica first used the claim
	// ("namespace/Kind/name"): while a node still runs one of its
	// replicas, the data is not deleted.
	UsedBy string `json:"usedBy,omitempty"`
}

// Equal reports whether two bindings record the same.
func (b Binding) Equal(o Binding) bool {
	if len(b.AccessModes) != len(o.AccessModes) {
		return false
	}
	for i := range b.AccessModes {
		if b.AccessModes[i] != o.AccessModes[i] {
			return false
		}
	}
	return b.Claim == o.Claim && b.Node == o.Node && b.Path == o.Path && b.Storage == o.Storage &&
		b.StorageClass == o.StorageClass && b.Phase == o.Phase && b.DesiredCommit == o.DesiredCommit &&
		b.ReclaimPolicy == o.ReclaimPolicy && b.UsedBy == o.UsedBy
}

// ClaimRef is the status key of a claim.
func ClaimRef(namespace, name string) manifest.Ref {
	return manifest.Ref{Namespace: namespace, Kind: "PersistentVolumeClaim", Name: name}
}

// Declared lists every claim the desired commit declares, by
// "namespace/name": the claim documents, and the claims of every ordinal
// a StatefulSet has ever placed (those of ordinals scaled away included,
// as Kubernetes keeps them) among the existing bindings.
func Declared(set *manifest.Set, prev map[manifest.Ref]Binding) map[string]manifest.Claim {
	out := map[string]manifest.Claim{}
	if set == nil {
		return out
	}
	for _, c := range set.Claims {
		out[c.Key()] = c
	}
	for i := range set.Workloads {
		w := &set.Workloads[i]
		if w.Stateful == nil || len(w.ClaimTemplates) == 0 {
			continue
		}
		for _, o := range w.Stateful.Ordinals(w.Replicas) {
			for _, rc := range w.ReplicaClaims(o) {
				out[rc.Claim.Key()] = rc.Claim
			}
		}
		// Ordinals beyond the replicas keep their claims (unless
		// whenScaled is Delete).
		if w.Stateful.WhenScaled == "Delete" {
			continue
		}
		for ref := range prev {
			if ref.Namespace != w.Namespace {
				continue
			}
			for t := range w.ClaimTemplates {
				o, ok := ordinalOf(ref.Name, t+"-"+w.Name+"-")
				if !ok {
					continue
				}
				for _, rc := range w.ReplicaClaims(o) {
					if rc.Volume == t {
						out[rc.Claim.Key()] = rc.Claim
					}
				}
			}
		}
	}
	return out
}

func ordinalOf(name, prefix string) (int, bool) {
	if len(name) <= len(prefix) || name[:len(prefix)] != prefix {
		return 0, false
	}
	n := 0
	for _, c := range name[len(prefix):] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 1<<30 {
			return 0, false
		}
	}
	return n, true
}

// Pins are the nodes the scheduler must place claims' replicas on, by
// "namespace/name": every node-local binding, except those whose claim
// allows a new volume elsewhere (AnnotationReclaimOnNodeLoss) while its
// node is not alive.
func Pins(prev map[manifest.Ref]Binding, declared map[string]manifest.Claim, alive func(node string) bool) map[string]string {
	out := map[string]string{}
	for ref, b := range prev {
		if b.Node == "" || b.Phase == Deleting {
			continue
		}
		key := ref.Namespace + "/" + ref.Name
		if c, ok := declared[key]; ok && c.ReclaimOnNodeLoss && !alive(b.Node) {
			continue
		}
		out[key] = b.Node
	}
	return out
}

// Input is what Next decides bindings from.
type Input struct {
	Set           *manifest.Set
	DesiredCommit string
	// Previous bindings, as committed.
	Previous map[manifest.Ref]Binding
	// NewlyBound are the claims the scheduler bound this pass, to the
	// node of the replica that first uses them ("namespace/name" → node).
	NewlyBound map[string]string
	// Used lists the claims on shared storage that placed replicas use.
	Used map[string]bool
	// Users names the workload that bound or used each claim this pass.
	Users map[string]manifest.Ref
	// InUse reports whether a node still runs a replica of the workload
	// a binding names (UsedBy): its data is not deleted meanwhile.
	InUse func(b Binding) bool
}

// Next returns the bindings the branch should hold.
func Next(in Input) map[manifest.Ref]Binding {
	declared := Declared(in.Set, in.Previous)
	out := make(map[manifest.Ref]Binding, len(in.Previous)+len(in.NewlyBound))
	for ref, b := range in.Previous {
		key := ref.Namespace + "/" + ref.Name
		c, ok := declared[key]
		switch {
		case b.Phase == Deleting:
			// A tombstone: its data is gone; a claim of the name bound
			// again replaces it below.
		case ok:
			b.Phase = Bound
			b.Storage = c.Storage.String()
			b.AccessModes = modes(c)
			b.StorageClass = c.StorageClass
			b.ReclaimPolicy = c.ReclaimPolicy
		case b.Node == "":
			// Shared storage: its data is never deleted by a node.
			b.Phase = Released
		case b.ReclaimPolicy == "Delete" || scaledAwayDelete(in.Set, ref):
			// Deleted once no node runs its user any more.
			b.ReclaimPolicy, b.Phase = "Delete", Released
			if in.InUse == nil || !in.InUse(b) {
				b.Phase = Deleting
			}
		default:
			b.Phase = Released
		}
		out[ref] = b
	}
	keys := make([]string, 0, len(in.NewlyBound)+len(in.Used))
	for k := range in.NewlyBound {
		keys = append(keys, k)
	}
	for k := range in.Used {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		c, ok := declared[key]
		if !ok {
			continue
		}
		ref := ClaimRef(c.Namespace, c.Name)
		node := in.NewlyBound[key]
		if b, had := out[ref]; had && b.Node == node && b.Phase != Deleting {
			continue
		}
		b := Binding{
			Claim: ref, Node: node, Storage: c.Storage.String(), AccessModes: modes(c),
			StorageClass: c.StorageClass, Phase: Bound, DesiredCommit: in.DesiredCommit,
			ReclaimPolicy: c.ReclaimPolicy,
		}
		if u, ok := in.Users[key]; ok {
			b.UsedBy = u.String()
		}
		if c.SharedPath != "" {
			b.Node = ""
			b.Path = path.Join(c.SharedPath, c.Namespace, c.Name)
		} else {
			// A fresh directory per binding: a claim bound anew (its node
			// lost) never meets the old data under the same name.
			h := sha256.Sum256([]byte(key + "\x00" + node + "\x00" + in.DesiredCommit))
			b.Path = path.Join(c.Namespace, c.Name+"-"+hex.EncodeToString(h[:4]))
		}
		out[ref] = b
	}
	return out
}

// scaledAwayDelete reports whether ref is the claim of an ordinal a
// StatefulSet with whenScaled: Delete no longer has.
func scaledAwayDelete(set *manifest.Set, ref manifest.Ref) bool {
	if set == nil {
		return false
	}
	for i := range set.Workloads {
		w := &set.Workloads[i]
		if w.Stateful == nil || w.Stateful.WhenScaled != "Delete" || w.Namespace != ref.Namespace {
			continue
		}
		for t := range w.ClaimTemplates {
			if _, ok := ordinalOf(ref.Name, t+"-"+w.Name+"-"); ok {
				return true
			}
		}
	}
	return false
}

func modes(c manifest.Claim) []string {
	if len(c.AccessModes) == 0 {
		return []string{manifest.ReadWriteOnce}
	}
	return append([]string(nil), c.AccessModes...)
}

// UsedPerNode adds up the sizes of the node-local claims each node holds
// (their data deleted excepted).
func UsedPerNode(bs map[manifest.Ref]Binding) map[string]int64 {
	out := map[string]int64{}
	for _, b := range bs {
		if b.Node == "" || b.Phase == Deleting {
			continue
		}
		if q, err := resource.ParseQuantity(b.Storage); err == nil {
			out[b.Node] += q.Value()
		}
	}
	return out
}
