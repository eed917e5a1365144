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
		b.StorageClass == o.StorageClass && b.Phase == o.Phase && b.DesiredCommit == o.DesiredCommit
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
		// Ordinals beyond the replicas keep their claims.
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
		if b.Node == "" {
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
}

// Next returns the bindings the branch should hold.
func Next(in Input) map[manifest.Ref]Binding {
	declared := Declared(in.Set, in.Previous)
	out := make(map[manifest.Ref]Binding, len(in.Previous)+len(in.NewlyBound))
	for ref, b := range in.Previous {
		key := ref.Namespace + "/" + ref.Name
		if c, ok := declared[key]; ok {
			b.Phase = Bound
			b.Storage = c.Storage.String()
			b.AccessModes = modes(c)
			b.StorageClass = c.StorageClass
		} else {
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
		if b, had := out[ref]; had && b.Node == node {
			continue
		}
		b := Binding{
			Claim: ref, Node: node, Storage: c.Storage.String(), AccessModes: modes(c),
			StorageClass: c.StorageClass, Phase: Bound, DesiredCommit: in.DesiredCommit,
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

func modes(c manifest.Claim) []string {
	if len(c.AccessModes) == 0 {
		return []string{manifest.ReadWriteOnce}
	}
	return append([]string(nil), c.AccessModes...)
}
