package leader

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// workload is an apps/v1 controller of one busybox container, in YAML's
// flow style; replicas < 0 leaves the field out (a DaemonSet).
func workload(kind, name string, replicas int) string {
	r := ""
	if replicas >= 0 {
		r = fmt.Sprintf("replicas: %d, ", replicas)
	}
	return fmt.Sprintf("{apiVersion: apps/v1, kind: %s, metadata: {name: %s}, spec: {%sselector: {matchLabels: {app: %[2]s}}, "+
		"template: {metadata: {labels: {app: %[2]s}}, spec: {containers: [{name: main, image: busybox}]}}}}\n", kind, name, r)
}

func deployment(name string, replicas int) string { return workload("Deployment", name, replicas) }

var daemonSet = workload("DaemonSet", "logger", -1)

// fataler is what load needs of *testing.T, *testing.B and *rapid.T.
type fataler interface{ Fatal(args ...any) }

func load(t fataler, docs ...string) *manifest.Set {
	set, err := manifest.Load([]manifest.File{{Path: "app.yaml", Data: []byte(strings.Join(docs, "---\n"))}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func members(alive ...string) []Member {
	var out []Member
	for _, n := range alive {
		out = append(out, Member{Name: n, Alive: true, CPUMilli: 4000, MemoryBytes: 8 << 30})
	}
	return out
}

func input(set *manifest.Set, cur *status.State, ms []Member) Input {
	return Input{Node: "node-a", Current: cur, Set: set, DesiredCommit: "c1", Members: ms,
		NodeGrace: 10 * time.Second, Now: t0, JobNow: t0}
}

// running reports every placed replica of next as running and ready, as
// the nodes would.
func running(next *status.State) map[string]Report {
	out := map[string]Report{}
	for ref, p := range next.Placements {
		for _, r := range p.Replicas {
			if r.Node == "" {
				continue
			}
			rep := out[r.Node]
			if rep.Replicas == nil {
				rep.Replicas = map[string]manifest.ReplicaStatus{}
			}
			rep.Replicas[ReportKey(ref, r.Index)] = manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true, SpecHash: r.SpecHash, PodIP: "10.0.0.1"}
			out[r.Node] = rep
		}
	}
	return out
}

func TestNextClaimsPlacesAndDescribes(t *testing.T) {
	set := load(t, deployment("web", 3), daemonSet)
	out := Next(input(set, nil, members("node-a", "node-b", "node-c")))
	if out.Next.Cluster.Leader != "node-a" || out.Next.Cluster.Term != 1 || out.Next.Cluster.DesiredCommit != "c1" {
		t.Fatalf("cluster %+v", out.Next.Cluster)
	}
	web := out.Next.Placements[manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}]
	got := web.Nodes()
	sort.Strings(got)
	if fmt.Sprint(got) != "[node-a node-b node-c]" {
		t.Fatalf("web on %s", got)
	}
	if len(out.Next.Nodes) != 3 || out.Next.Nodes["node-b"].State != status.NodeAlive || out.Next.Nodes["node-b"].Allocated != nil {
		t.Fatalf("nodes %+v", out.Next.Nodes)
	}
	if !strings.Contains(out.Message.Summary, "node-a leads (term 1)") || !strings.Contains(out.Message.Body, "schedule default/web: 3 replica(s) on node-a, node-b, node-c") {
		t.Fatalf("message %+v", out.Message)
	}
}

// A report is matched to its row only for the template the row runs: a
// node that still runs the old template says nothing of the new one.
func TestReportsMatchedByTemplate(t *testing.T) {
	set := load(t, deployment("web", 1))
	first := Next(input(set, nil, members("node-a")))
	in := input(set, first.Next, members("node-a"))
	in.Reports = running(first.Next)
	second := Next(in)
	ref := set.Workloads[0].Ref
	r := second.Next.Placements[ref].Replicas[0]
	if r.Status == nil || r.Status.Phase != manifest.PhaseRunning || r.Status.PodIP != "10.0.0.1" {
		t.Fatalf("report not taken: %+v", r.Status)
	}
	stale := running(first.Next)
	for k, v := range stale["node-a"].Replicas {
		v.SpecHash, v.PodIP = "other-template", "10.9.9.9"
		stale["node-a"].Replicas[k] = v
	}
	in.Reports = stale
	third := Next(in)
	if r := third.Next.Placements[ref].Replicas[0]; r.Status != nil {
		t.Fatalf("another template's report was taken: %+v", r.Status)
	}
}

// A dead node keeps its replicas, cordoned, for the grace; then they move.
// The bookkeeping goes in and out explicitly, and the grace's end is a
// wake time.
func TestNodeGrace(t *testing.T) {
	set := load(t, deployment("web", 2), daemonSet)
	ms := members("node-a", "node-b")
	a := Next(input(set, nil, ms))
	in := input(set, a.Next, []Member{ms[0], {Name: "node-b"}})
	in.Reports = running(a.Next)
	b := Next(in)
	if !b.DeadSince["node-b"].Equal(t0) || !b.GraceWake.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("grace bookkeeping %v wake %v", b.DeadSince, b.GraceWake)
	}
	web := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	if !reflect.DeepEqual(b.Next.Placements[web].Nodes(), a.Next.Placements[web].Nodes()) {
		t.Fatalf("moved within the grace: %v", b.Next.Placements[web].Nodes())
	}
	in.Current, in.DeadSince, in.Now, in.JobNow = b.Next, b.DeadSince, t0.Add(11*time.Second), t0.Add(11*time.Second)
	c := Next(in)
	if got := fmt.Sprint(c.Next.Placements[web].Nodes()); got != "[node-a node-a]" {
		t.Fatalf("after the grace web is on %s", got)
	}
	var ds manifest.Ref
	for _, w := range set.Workloads {
		if w.PerNode {
			ds = w.Ref
		}
	}
	if got := fmt.Sprint(c.Next.Placements[ds].Nodes()); got != "[node-a node-b]" {
		t.Fatalf("the DaemonSet's replica left the absent node: %s", got)
	}
	// node-b returns: its bookkeeping is dropped.
	in.Members = ms
	in.Current, in.DeadSince = c.Next, c.DeadSince
	if d := Next(in); len(d.DeadSince) != 0 {
		t.Fatalf("bookkeeping kept for a returned node: %v", d.DeadSince)
	}
}

// Next is pure: the same input gives the same output, the input is left
// as it was, and Next of its own output with nothing new (the nodes
// reporting what it placed) changes nothing; a change to one workload
// never moves another's replicas.
func TestNextProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nNodes := rapid.IntRange(1, 6).Draw(t, "nodes")
		var names []string
		for i := 0; i < nNodes; i++ {
			names = append(names, fmt.Sprintf("node-%c", 'a'+i))
		}
		var docs []string
		nW := rapid.IntRange(1, 5).Draw(t, "workloads")
		for i := 0; i < nW; i++ {
			docs = append(docs, deployment(fmt.Sprintf("w%d", i), rapid.IntRange(0, 6).Draw(t, fmt.Sprintf("replicas%d", i))))
		}
		if rapid.Bool().Draw(t, "daemonset") {
			docs = append(docs, daemonSet)
		}
		set := load(t, docs...)
		in := input(set, nil, members(names...))
		a := Next(in)
		b := Next(in)
		if !status.Equal(a.Next, b.Next) || !reflect.DeepEqual(a.Message, b.Message) {
			t.Fatalf("not deterministic")
		}
		// Settle: commit, let the nodes report, decide again.
		in.Current, in.DeadSince = a.Next, a.DeadSince
		in.Reports = running(a.Next)
		settled := Next(in).Next
		in.Current = settled
		in.Reports = running(settled)
		before := settled.Clone()
		again := Next(in)
		if !status.Equal(settled, again.Next) {
			t.Fatalf("Next of its own settled output changed it: %s", again.Message.Body)
		}
		if !status.Equal(before, settled) {
			t.Fatal("Next modified its input")
		}
		// Scale one workload: no other workload's replica moves.
		k := rapid.IntRange(0, nW-1).Draw(t, "changed")
		docs[k] = deployment(fmt.Sprintf("w%d", k), rapid.IntRange(0, 6).Draw(t, "newReplicas"))
		in.Set = load(t, docs...)
		changed := Next(in).Next
		for ref, p := range settled.Placements {
			if ref.Name == fmt.Sprintf("w%d", k) {
				continue
			}
			if !reflect.DeepEqual(p.Nodes(), changed.Placements[ref].Nodes()) {
				t.Fatalf("%s moved from %v to %v when w%d changed", ref.Name, p.Nodes(), changed.Placements[ref].Nodes(), k)
			}
		}
	})
}

// BenchmarkLeaderPass is one leader pass: leader.Next for 100 workloads
// on 20 nodes, settled (every replica reported), as the agent runs it on
// every wake-up.
func BenchmarkLeaderPass(b *testing.B) {
	var docs []string
	for i := 0; i < 100; i++ {
		docs = append(docs, deployment(fmt.Sprintf("w%03d", i), 1+i%5))
	}
	docs = append(docs, daemonSet)
	set := load(b, docs...)
	var names []string
	for i := 0; i < 20; i++ {
		names = append(names, fmt.Sprintf("node-%02d", i))
	}
	in := input(set, nil, members(names...))
	first := Next(in)
	in.Current, in.Reports = first.Next, running(first.Next)
	in.Current = Next(in).Next
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = Next(in)
	}
}
