package leader

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/jobs"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

// Member is one node as gossip sees it.
type Member struct {
	Name        string
	Alive       bool
	Labels      map[string]string
	CPUMilli    int64
	MemoryBytes int64
	// VolumesBytes is what the node's claims may add up to (0: unknown).
	VolumesBytes int64
	// Arch is the node's architecture (GOARCH).
	Arch string
	// Peer is the address of the node's peer listener.
	Peer string
	// SigningKey is the public key of the node's status commits.
	SigningKey string
	// Address is the node's address between nodes.
	Address string
}

// Report is what one node last said of its replicas.
type Report struct {
	// Replicas by ReportKey.
	Replicas map[string]manifest.ReplicaStatus
	// Reached is the desired commit whose placements there all run.
	Reached string
}

// ReportKey names a replica in a Report: "namespace/Kind/name/index".
func ReportKey(ref manifest.Ref, index int) string {
	return fmt.Sprintf("%s/%d", ref, index)
}

// Input is everything Next decides from.
type Input struct {
	// Node is the leader's own name (written as Cluster.Leader).
	Node string
	// Current is the status branch as last read (nil: empty branch).
	Current *status.State
	// Set is the desired commit in force, DesiredCommit its id; nil
	// while no desired commit was taken yet.
	Set           *manifest.Set
	DesiredCommit string
	// Rejection is the newest refused desired commit not yet recorded.
	Rejection *status.Rejection
	// Members is the gossip view, the leader included. Nil keeps the
	// nodes as the branch records them (driftless plan).
	Members []Member
	// Reports is each node's newest report, the leader's own included.
	Reports map[string]Report
	// DeadSince is when each node was first seen dead (the grace
	// bookkeeping of the previous call's Output).
	DeadSince map[string]time.Time
	// NodeGrace is how long a dead node keeps its replicas (cordoned).
	NodeGrace time.Duration
	// Now is the wall clock (node grace); JobNow the clock of Jobs,
	// CronJobs and rollouts (the same but in tests).
	Now, JobNow time.Time
	Policy      scheduler.Policy
	// Services are the ranges Service addresses come from.
	Services services.Config
	// PodNetwork cuts the cluster CIDR into the nodes' subnets.
	PodNetwork PodNetwork
}

// Output is what Next decided.
type Output struct {
	// Next is the status the branch should hold; equal to Current
	// (status.Equal) when nothing meaningful changed.
	Next *status.State
	// Message describes the change from Current to Next.
	Message *status.Message
	// JobWake (on the JobNow clock) and GraceWake (wall clock) are when
	// time alone changes Next: a Job deadline, a CronJob schedule, a
	// rollout's minReadySeconds; a node grace expiring. Zero: none.
	JobWake, GraceWake time.Time
	// DeadSince is the grace bookkeeping to pass to the next call.
	DeadSince map[string]time.Time
}

// Next decides the next status. Pure: the same Input gives the same
// Output, and Input is not modified.
func Next(in Input) Output {
	cur := in.Current
	if cur == nil {
		cur = (*status.State)(nil).Clone()
	}
	next := cur.Clone()
	if next.Cluster.Leader != in.Node || next.Cluster.Term == 0 {
		next.Cluster.Term++
		next.Cluster.Leader = in.Node
	}
	next.Cluster.SchemaVersion = status.SchemaVersion
	if in.Rejection != nil {
		next.Cluster.LastRejection = in.Rejection
	}
	dead := make(map[string]time.Time, len(in.DeadSince))
	for k, v := range in.DeadSince {
		dead[k] = v
	}
	var policies []manifest.Node
	if in.Set != nil {
		policies = in.Set.Nodes
	}
	nodes, files := inventory(cur, in, policies, dead)
	allocatePodCIDRs(files, in.PodNetwork)
	next.Nodes = files
	out := Output{DeadSince: dead}
	if in.Set != nil {
		next.Cluster.DesiredCommit = in.DesiredCommit
		next.Cluster.Warnings = nil
		for _, w := range in.Set.Warnings {
			next.Cluster.Warnings = append(next.Cluster.Warnings, w.String())
		}
		// A claim's node is where its replicas go; past the node grace
		// (the scheduler sees the node not alive) a claim that allows it
		// is bound anew elsewhere.
		declared := volumes.Declared(in.Set, cur.Volumes)
		schedAlive := make(map[string]bool, len(nodes))
		for _, n := range nodes {
			schedAlive[n.Name] = n.Alive
		}
		res := jobs.Decide(jobs.Input{
			Policy:        in.Policy,
			Set:           in.Set,
			DesiredCommit: in.DesiredCommit,
			Current:       observedPlacements(cur, in),
			Nodes:         nodes,
			Now:           in.JobNow,
			Lingering:     lingering(cur, in),
			ClaimNodes:    volumes.Pins(cur.Volumes, declared, func(n string) bool { return schedAlive[n] }),
			VolumesUsed:   volumes.UsedPerNode(cur.Volumes),
		})
		next.Placements, out.JobWake = res.Placements, res.Wake
		if w := scheduler.TaintWake(in.Set.Workloads, next.Placements, nodes, in.JobNow); !w.IsZero() && (out.JobWake.IsZero() || w.Before(out.JobWake)) {
			out.JobWake = w
		}
		next.Volumes = volumes.Next(volumes.Input{
			Set:           in.Set,
			DesiredCommit: in.DesiredCommit,
			Previous:      cur.Volumes,
			NewlyBound:    res.Claims.Bound,
			Used:          res.Claims.Shared,
			Users:         res.Claims.Users,
			InUse:         claimInUse(in, next.Placements),
		})
		alloc := scheduler.Allocated(in.Set.Workloads, next.Placements)
		for name, ns := range next.Nodes {
			ns.Allocated = quantities(alloc[name])
			next.Nodes[name] = ns
		}
		next.Services = services.Compute(services.Input{
			Config:     in.Services,
			Services:   in.Set.Services,
			Workloads:  in.Set.Workloads,
			Placements: next.Placements,
			Alive:      func(n string) bool { return next.Nodes[n].State == status.NodeAlive },
			Previous:   cur.Services,
		})
	}
	for _, since := range dead {
		if e := since.Add(in.NodeGrace); e.After(in.Now) && (out.GraceWake.IsZero() || e.Before(out.GraceWake)) {
			out.GraceWake = e
		}
	}
	out.Next = next
	out.Message = describe(cur, next, in.Rejection)
	return out
}

// observedPlacements is cur's placements with the freshest status every
// node reported for its replicas. A report of another template (the node
// has not replaced the replica yet) says nothing of this one. A Job
// replica's Succeeded or Failed is final: no later report (a container
// gone, a node restarted) changes it.
func observedPlacements(cur *status.State, in Input) map[manifest.Ref]manifest.Placement {
	out := make(map[manifest.Ref]manifest.Placement, len(cur.Placements))
	for ref, p := range cur.Placements {
		rs := make([]manifest.ReplicaPlacement, len(p.Replicas))
		copy(rs, p.Replicas)
		for i, r := range rs {
			if r.Node == "" || (p.Job != nil && jobs.Terminal(r.Status)) {
				continue
			}
			o, ok := in.Reports[r.Node].Replicas[ReportKey(ref, r.Index)]
			if !ok || (o.SpecHash != "" && o.SpecHash != r.SpecHash) {
				continue
			}
			o.SpecHash = ""
			rs[i].Status = &o
		}
		p.Replicas = rs
		out[ref] = p
	}
	return out
}

// lingering counts, per workload, the replicas that alive nodes still
// report although cur binds them elsewhere or not at all: containers a
// node has not stopped yet (a rollout counts them against maxSurge).
func lingering(cur *status.State, in Input) map[manifest.Ref]int {
	bound := map[string]bool{} // node + "\x00" + report key
	refs := map[string]manifest.Ref{}
	for ref, p := range cur.Placements {
		refs[ref.String()] = ref
		for _, r := range p.Replicas {
			if r.Node != "" {
				bound[r.Node+"\x00"+ReportKey(ref, r.Index)] = true
			}
		}
	}
	alive := map[string]bool{in.Node: true}
	for _, m := range in.Members {
		alive[m.Name] = alive[m.Name] || m.Alive
	}
	out := map[manifest.Ref]int{}
	for n, r := range in.Reports {
		if !alive[n] {
			continue
		}
		for key := range r.Replicas {
			if bound[n+"\x00"+key] {
				continue
			}
			if i := strings.LastIndexByte(key, '/'); i > 0 {
				if ref, ok := refs[key[:i]]; ok {
					out[ref]++
				}
			}
		}
	}
	return out
}

// quantities renders milli-unit sums as Kubernetes quantities: cpu in
// cores (500m), everything else in binary units (256Mi).
func quantities(milli map[string]int64) map[string]string {
	if len(milli) == 0 {
		return nil
	}
	out := make(map[string]string, len(milli))
	for k, v := range milli {
		if k == "cpu" {
			out[k] = resource.NewMilliQuantity(v, resource.DecimalSI).String()
		} else {
			out[k] = resource.NewQuantity(v/1000, resource.BinarySI).String()
		}
	}
	return out
}

func short(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

// claimInUse reports whether a claim's data may still be in use: a placed
// replica mounts it, or its node reports a replica of the workload that
// bound it (one of a workload gone from the commit, whatever its claims;
// one of a workload still there, if that replica mounts the claim).
func claimInUse(in Input, placements map[manifest.Ref]manifest.Placement) func(volumes.Binding) bool {
	return func(b volumes.Binding) bool {
		key := b.Claim.Namespace + "/" + b.Claim.Name
		mounts := func(w *manifest.Workload, idx int) bool {
			for _, rc := range w.ReplicaClaims(idx) {
				if rc.Claim.Key() == key {
					return true
				}
			}
			return false
		}
		for ref, p := range placements {
			w, ok := in.Set.Workload(ref)
			if !ok || !w.HasClaims() {
				continue
			}
			for _, r := range p.Replicas {
				if r.Node != "" && mounts(w, r.Index) {
					return true
				}
			}
		}
		if b.UsedBy == "" {
			return false
		}
		for rk := range in.Reports[b.Node].Replicas {
			i := strings.LastIndexByte(rk, '/')
			if i < 0 || rk[:i] != b.UsedBy {
				continue
			}
			var ref manifest.Ref
			if parts := strings.Split(b.UsedBy, "/"); len(parts) == 3 {
				ref = manifest.Ref{Namespace: parts[0], Kind: parts[1], Name: parts[2]}
			}
			w, ok := in.Set.Workload(ref)
			if !ok {
				return true
			}
			if idx, err := strconv.Atoi(rk[i+1:]); err != nil || mounts(w, idx) {
				return true
			}
		}
		return false
	}
}
