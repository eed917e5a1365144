package scheduler

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

// benchCluster is 5,000 nodes in 5 zones, three sizes, one in 20 tainted
// for a dedicated team (NoSchedule), one in 50 with a PreferNoSchedule
// taint; and 100,000 replicas: a few DaemonSets, then Deployments with
// requests, some pinned by nodeSelector or node affinity, some
// tolerating the dedicated taint, one in ten with required anti-affinity
// per zone or per host, some with topology spread constraints.
func benchCluster() ([]Node, []manifest.Workload, int) {
	const nodes, replicas = 5000, 100000
	var ns []Node
	sizes := []struct{ cpu, mem string }{{"8", "32Gi"}, {"16", "64Gi"}, {"32", "128Gi"}}
	for i := 0; i < nodes; i++ {
		sz := sizes[i%3]
		n := Node{
			Name:  fmt.Sprintf("node-%05d", i),
			Alive: true,
			Labels: map[string]string{
				zoneKey:     fmt.Sprintf("zone-%d", i%5),
				"disk":      []string{"ssd", "hdd"}[i%2],
				"cores":     fmt.Sprint(8 << (i % 3)),
				"team":      fmt.Sprintf("t%d", i%20),
				hostnameKey: fmt.Sprintf("node-%05d", i),
			},
			Allocatable: map[string]resource.Quantity{"cpu": resource.MustParse(sz.cpu), "memory": resource.MustParse(sz.mem)},
		}
		if i%20 == 0 {
			n.Taints = append(n.Taints, manifest.Taint{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"})
		}
		if i%50 == 7 {
			n.Taints = append(n.Taints, manifest.Taint{Key: "flaky", Effect: "PreferNoSchedule"})
		}
		ns = append(ns, n)
	}
	var ws []manifest.Workload
	for i := 0; i < 3; i++ {
		w := benchWorkload(fmt.Sprintf("ds-%d", i), 0, "50m", "64Mi")
		w.Ref.Kind, w.PerNode = "DaemonSet", true
		if i == 0 {
			w.Template.Spec.Tolerations = []manifest.Toleration{{Operator: "Exists"}}
		}
		ws = append(ws, w)
	}
	// ds-0 tolerates everything; the others miss the dedicated nodes.
	total := nodes + 2*(nodes-nodes/20)
	for i := 0; total < replicas; i++ {
		r := 10 + i%90
		if i%20 == 4 {
			r = 5 // anti-affine per zone: one replica per zone
		}
		if total+r > replicas {
			r = replicas - total
		}
		w := benchWorkload(fmt.Sprintf("app-%04d", i), r, fmt.Sprintf("%dm", 50+(i%8)*50), fmt.Sprintf("%dMi", 64+(i%6)*64))
		spec := &w.Template.Spec
		switch i % 10 {
		case 1:
			spec.NodeSelector = map[string]string{"disk": "ssd"}
		case 2:
			spec.Affinity = &manifest.Affinity{NodeAffinity: &manifest.NodeAffinity{
				Required:  &manifest.NodeSelector{NodeSelectorTerms: []manifest.NodeSelectorTerm{{MatchExpressions: []manifest.NodeSelectorRequirement{{Key: "cores", Operator: "Gt", Values: []string{"8"}}}}}},
				Preferred: []manifest.PreferredSchedulingTerm{{Weight: 50, Preference: manifest.NodeSelectorTerm{MatchExpressions: []manifest.NodeSelectorRequirement{{Key: "disk", Operator: "In", Values: []string{"ssd"}}}}}},
			}}
		case 3:
			spec.Tolerations = []manifest.Toleration{{Key: "dedicated", Operator: "Equal", Value: "gpu", Effect: "NoSchedule"}}
			spec.NodeSelector = map[string]string{"team": "t0"}
		case 4:
			key := hostnameKey
			if i%20 == 4 {
				key = zoneKey
			}
			spec.Affinity = &manifest.Affinity{PodAntiAffinity: &manifest.PodAffinity{Required: []manifest.PodAffinityTerm{{
				LabelSelector: &manifest.LabelSelector{MatchLabels: w.Template.Metadata.Labels}, TopologyKey: key}}}}
		case 5:
			spec.TopologySpreadConstraints = []manifest.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: zoneKey, WhenUnsatisfiable: "DoNotSchedule",
				LabelSelector: &manifest.LabelSelector{MatchLabels: w.Template.Metadata.Labels}}}
		}
		ws = append(ws, w)
		total += r
	}
	return ns, ws, total
}

func benchWorkload(name string, replicas int, cpu, mem string) manifest.Workload {
	w := wl(name, replicas)
	w.Template.Metadata.Labels = map[string]string{"app": name}
	w.Template.Spec.Containers[0].Resources.Requests = manifest.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem)}
	return w
}

func placedCount(out Output) (placed, pending int) {
	for _, p := range out.Placements {
		for _, r := range p.Replicas {
			if r.Node != "" {
				placed++
			} else {
				pending++
			}
		}
	}
	return
}

// BenchmarkSchedule5k places 100,000 replicas on 5,000 empty nodes.
func BenchmarkSchedule5k(b *testing.B) {
	nodes, ws, _ := benchCluster()
	in := Input{DesiredCommit: "c1", Workloads: ws, Nodes: nodes}
	b.ResetTimer()
	var placed, pending int
	for n := 0; n < b.N; n++ {
		placed, pending = placedCount(Schedule(in))
	}
	b.ReportMetric(float64(placed)*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
	b.ReportMetric(float64(placed), "placed")
	b.ReportMetric(float64(pending), "pending")
}

// BenchmarkReschedule5kNodeLoss re-places what ran on one node that died,
// from the placed state: every other replica is kept.
func BenchmarkReschedule5kNodeLoss(b *testing.B) {
	nodes, ws, _ := benchCluster()
	first := Schedule(Input{DesiredCommit: "c1", Workloads: ws, Nodes: nodes})
	dead := append([]Node(nil), nodes...)
	dead[1234].Alive = false
	moved := 0
	for _, p := range first.Placements {
		for _, r := range p.Replicas {
			if r.Node == dead[1234].Name {
				moved++
			}
		}
	}
	in := Input{DesiredCommit: "c1", Workloads: ws, Nodes: dead, Current: first.Placements}
	b.ResetTimer()
	var placed int
	for n := 0; n < b.N; n++ {
		placed, _ = placedCount(Schedule(in))
	}
	b.ReportMetric(float64(placed), "placed")
	b.ReportMetric(float64(moved), "moved")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pass")
}
