package scheduler

import "driftless.dev/driftless/manifest"

// Allocated sums, per node, the resource requests of the replicas placed
// on it (milli-units; limits stand in for unset requests, as in
// Kubernetes). Workloads without a placement count for nothing.
func Allocated(workloads []manifest.Workload, placements map[manifest.Ref]manifest.Placement) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for i := range workloads {
		w := &workloads[i]
		p, ok := placements[w.Ref]
		if !ok {
			continue
		}
		req := requests(w)
		for _, r := range p.Replicas {
			if r.Node == "" || len(req) == 0 {
				continue
			}
			if out[r.Node] == nil {
				out[r.Node] = map[string]int64{}
			}
			for k, v := range req {
				out[r.Node][k] += v
			}
		}
	}
	return out
}
