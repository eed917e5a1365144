// Package status reads and writes the status branch: the tree of
// cluster.yaml, nodes/ and placements/ that the scheduler leader commits
// and every node reads. Commits are built with plumbing (no work tree) and
// pushed as a compare-and-swap, so concurrent writers never lose each
// other's updates and a deposed writer's push fails.
//
// It stores only what it is given: callers must never put secret values
// in a State. It must never force-push or rewrite the branch.
package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/volumes"
)

// SchemaVersion is the version of the layout this code writes. A branch
// written with a newer version is refused.
const SchemaVersion = 1

// Errors; callers use errors.Is.
var (
	// ErrConflict: the branch moved under a push (compare-and-swap lost).
	ErrConflict = errors.New("status branch moved")
	// ErrNewerSchema: the branch was written by a newer driftless.
	ErrNewerSchema = errors.New("status branch written by a newer driftless")
)

// Cluster is cluster.yaml.
type Cluster struct {
	SchemaVersion int    `json:"schemaVersion"`
	Leader        string `json:"leader,omitempty"`
	Term          int64  `json:"term"`
	// DesiredCommit is the desired commit in force.
	DesiredCommit string `json:"desiredCommit,omitempty"`
	// Warnings are the manifest warnings of the desired commit in force
	// (a Secret stored in plain text, ...), as file:line: message lines.
	Warnings      []string   `json:"warnings,omitempty"`
	LastRejection *Rejection `json:"lastRejection,omitempty"`
}

// Rejection records a desired commit that was refused and why.
type Rejection struct {
	Commit string    `json:"commit"`
	Time   time.Time `json:"time"`
	Errors []string  `json:"errors"`
}

// DefaultBranch is the status branch unless told otherwise (one per
// cluster when several share a repository).
const DefaultBranch = "driftless/status"

// NodeState is a node's state on the status branch.
type NodeState string

// The states of a node: alive (gossip sees it), dead (gossip lost it; its
// replicas move after the node grace, DaemonSets' stay), removed (a Node
// policy with spec.removed dropped it from nodes/).
const (
	NodeAlive   NodeState = "alive"
	NodeDead    NodeState = "dead"
	NodeRemoved NodeState = "removed"
)

// NodeStatus is nodes/<name>.yaml.
type NodeStatus struct {
	SchemaVersion int               `json:"schemaVersion"`
	Name          string            `json:"name"`
	Labels        map[string]string `json:"labels,omitempty"`
	Capacity      map[string]string `json:"capacity,omitempty"`
	State         NodeState         `json:"state,omitempty"`
	// Allocated is the sum of the resource requests of the replicas
	// placed on the node, as quantities (cpu: 500m, memory: 256Mi).
	Allocated map[string]string `json:"allocated,omitempty"`
	// DesiredCommitReached is the newest desired commit whose placements
	// for this node all ran (ready, or finished for Jobs), as the node
	// reported it.
	DesiredCommitReached string `json:"desiredCommitReached,omitempty"`
	// SigningKey is the node's public SSH key ("ssh-ed25519 AAAA...") that
	// signs the status commits it makes as leader. Published for
	// operators building an allowed_signers file; trust comes from that
	// file, never from this branch.
	SigningKey string `json:"signingKey,omitempty"`
	// Address is the node's address between nodes: the other nodes route
	// its PodCIDR through it.
	Address string `json:"address,omitempty"`
	// PodCIDR is the node's subnet of the cluster CIDR, given by the
	// leader and kept for the node's life; PodCIDRPending says why it
	// has none (the cluster CIDR is full).
	PodCIDR        string `json:"podCIDR,omitempty"`
	PodCIDRPending string `json:"podCIDRPending,omitempty"`
	// PeerAddress is where the node's peer listener answers (logs,
	// reconcile, diff); empty when it is off.
	PeerAddress string `json:"peerAddress,omitempty"`
	// Taints are the node's NoExecute taints in force with the time the
	// leader first saw each (timeAdded), from which tolerationSeconds
	// count; kept so that a new leader counts from the same time.
	Taints []manifest.Taint `json:"taints,omitempty"`
}

// placementFile is placements/<ns>/<Kind>.<name>.yaml.
type placementFile struct {
	SchemaVersion int `json:"schemaVersion"`
	manifest.Placement
}

// State is the whole status branch at one commit.
type State struct {
	// Head is the status commit this state was read from ("" when the
	// branch does not exist yet).
	Head       string
	Cluster    Cluster
	Nodes      map[string]NodeStatus
	Placements map[manifest.Ref]manifest.Placement
	// Services are the Services' addresses and endpoints.
	Services map[manifest.Ref]services.Record
	// Volumes are the claims' bindings to nodes and directories.
	Volumes map[manifest.Ref]volumes.Binding
}

// Message is what a status commit says: a one-line summary, an optional
// body, and the trailers that tie it to the desired commit.
type Message struct {
	Summary       string
	Body          string
	DesiredCommit string
	Leader        string
	Term          int64
}

// String renders the commit message with its trailers.
func (m Message) String() string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(m.Summary))
	b.WriteString("\n\n")
	if body := strings.TrimSpace(m.Body); body != "" {
		b.WriteString(body)
		b.WriteString("\n\n")
	}
	if m.DesiredCommit != "" {
		fmt.Fprintf(&b, "Desired-Commit: %s\n", m.DesiredCommit)
	}
	fmt.Fprintf(&b, "Leader: %s\nTerm: %d\n", m.Leader, m.Term)
	return b.String()
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	if s == nil {
		return &State{Nodes: map[string]NodeStatus{}, Placements: map[manifest.Ref]manifest.Placement{}, Services: map[manifest.Ref]services.Record{}, Volumes: map[manifest.Ref]volumes.Binding{}}
	}
	out := &State{Head: s.Head, Cluster: s.Cluster, Nodes: make(map[string]NodeStatus, len(s.Nodes)), Placements: make(map[manifest.Ref]manifest.Placement, len(s.Placements)),
		Services: make(map[manifest.Ref]services.Record, len(s.Services)), Volumes: make(map[manifest.Ref]volumes.Binding, len(s.Volumes))}
	for k, b := range s.Volumes {
		b.AccessModes = append([]string(nil), b.AccessModes...)
		out.Volumes[k] = b
	}
	for k, r := range s.Services {
		r.Ports = append([]services.Port(nil), r.Ports...)
		eps := make([]services.Endpoint, len(r.Endpoints))
		for i, e := range r.Endpoints {
			e.Ports = append([]int32(nil), e.Ports...)
			eps[i] = e
		}
		r.Endpoints = eps
		out.Services[k] = r
	}
	if r := s.Cluster.LastRejection; r != nil {
		c := *r
		c.Errors = append([]string(nil), r.Errors...)
		out.Cluster.LastRejection = &c
	}
	for k, n := range s.Nodes {
		n.Labels = cloneMap(n.Labels)
		n.Capacity = cloneMap(n.Capacity)
		out.Nodes[k] = n
	}
	for k, p := range s.Placements {
		rs := make([]manifest.ReplicaPlacement, len(p.Replicas))
		for i, r := range p.Replicas {
			r.Pending = append([]string(nil), r.Pending...)
			if r.Status != nil {
				st := *r.Status
				r.Status = &st
			}
			rs[i] = r
		}
		p.Replicas = rs
		if p.Job != nil {
			j := *p.Job
			p.Job = &j
		}
		if p.CronJob != nil {
			c := *p.CronJob
			c.Active = append([]string(nil), c.Active...)
			c.Runs = append([]string(nil), c.Runs...)
			p.CronJob = &c
		}
		out.Placements[k] = p
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Equal reports whether two states would write the same tree.
func Equal(a, b *State) bool {
	fa, err1 := a.files()
	fb, err2 := b.files()
	if err1 != nil || err2 != nil || len(fa) != len(fb) {
		return false
	}
	for k, v := range fa {
		if !bytes.Equal(v, fb[k]) {
			return false
		}
	}
	return true
}

// PlacementPath is where a workload's placement lives on the branch.
func PlacementPath(r manifest.Ref) string {
	return path.Join("placements", r.Namespace, r.Kind+"."+r.Name+".yaml")
}

// ServicePath is where a Service's record lives on the branch.
func ServicePath(r manifest.Ref) string {
	return path.Join("services", r.Namespace, r.Name+".yaml")
}

// VolumePath is where a claim's binding lives on the branch.
func VolumePath(r manifest.Ref) string {
	return path.Join("volumes", r.Namespace, r.Name+".yaml")
}

type volumeFile struct {
	SchemaVersion int `json:"schemaVersion"`
	volumes.Binding
}

type serviceFile struct {
	SchemaVersion int `json:"schemaVersion"`
	services.Record
}

// files encodes the state as the branch's files.
func (s *State) files() (map[string][]byte, error) {
	out := map[string][]byte{}
	c := s.Cluster
	c.SchemaVersion = SchemaVersion
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	out["cluster.yaml"] = b
	for name, n := range s.Nodes {
		n.SchemaVersion = SchemaVersion
		n.Name = name
		b, err := yaml.Marshal(n)
		if err != nil {
			return nil, err
		}
		out[path.Join("nodes", name+".yaml")] = b
	}
	for ref, p := range s.Placements {
		p.Workload = ref
		rs := append([]manifest.ReplicaPlacement(nil), p.Replicas...)
		sort.Slice(rs, func(i, j int) bool { return rs[i].Index < rs[j].Index })
		p.Replicas = rs
		b, err := yaml.Marshal(placementFile{SchemaVersion: SchemaVersion, Placement: p})
		if err != nil {
			return nil, err
		}
		out[PlacementPath(ref)] = b
	}
	for ref, r := range s.Services {
		r.Service = ref
		b, err := yaml.Marshal(serviceFile{SchemaVersion: SchemaVersion, Record: r})
		if err != nil {
			return nil, err
		}
		out[ServicePath(ref)] = b
	}
	for ref, v := range s.Volumes {
		v.Claim = ref
		b, err := yaml.Marshal(volumeFile{SchemaVersion: SchemaVersion, Binding: v})
		if err != nil {
			return nil, err
		}
		out[VolumePath(ref)] = b
	}
	return out, nil
}

type schemaOnly struct {
	SchemaVersion int `json:"schemaVersion"`
}

// decodeFiles builds a State from the branch's files (YAML).
func decodeFiles(files map[string][]byte) (*State, error) {
	js := make(map[string][]byte, len(files))
	for name, b := range files {
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, fmt.Errorf("status file %s: %w", name, err)
		}
		js[name] = j
	}
	return decodeJSONFiles(js)
}

// decodeJSONFiles builds a State from the branch's files in their JSON
// form; every value is decoded afresh, so States share nothing.
func decodeJSONFiles(files map[string][]byte) (*State, error) {
	s := &State{Nodes: map[string]NodeStatus{}, Placements: map[manifest.Ref]manifest.Placement{}, Services: map[manifest.Ref]services.Record{}, Volumes: map[manifest.Ref]volumes.Binding{}}
	for name, b := range files {
		var v schemaOnly
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("status file %s: %w", name, err)
		}
		if v.SchemaVersion > SchemaVersion {
			return nil, fmt.Errorf("%w (schema %d > %d in %s); refusing to act: upgrade this agent", ErrNewerSchema, v.SchemaVersion, SchemaVersion, name)
		}
		switch {
		case name == "cluster.yaml":
			if err := json.Unmarshal(b, &s.Cluster); err != nil {
				return nil, fmt.Errorf("status file %s: %w", name, err)
			}
		case strings.HasPrefix(name, "nodes/") && strings.HasSuffix(name, ".yaml"):
			var n NodeStatus
			if err := json.Unmarshal(b, &n); err != nil {
				return nil, fmt.Errorf("status file %s: %w", name, err)
			}
			s.Nodes[n.Name] = n
		case strings.HasPrefix(name, "placements/") && strings.HasSuffix(name, ".yaml"):
			var p placementFile
			if err := json.Unmarshal(b, &p); err != nil {
				return nil, fmt.Errorf("status file %s: %w", name, err)
			}
			s.Placements[p.Workload] = p.Placement
		case strings.HasPrefix(name, "services/") && strings.HasSuffix(name, ".yaml"):
			var r serviceFile
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("status file %s: %w", name, err)
			}
			r.Record.Service.Kind = "Service"
			s.Services[r.Record.Service] = r.Record
		case strings.HasPrefix(name, "volumes/") && strings.HasSuffix(name, ".yaml"):
			var v volumeFile
			if err := json.Unmarshal(b, &v); err != nil {
				return nil, fmt.Errorf("status file %s: %w", name, err)
			}
			v.Binding.Claim.Kind = "PersistentVolumeClaim"
			s.Volumes[v.Binding.Claim] = v.Binding
		}
	}
	return s, nil
}
