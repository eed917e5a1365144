package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkTwentyToReady measures, on one agent and real containerd, the
// time from `git push` of a workload of 20 replicas to all 20 ready (as
// the agent's API reports them): a StatefulSet with OrderedReady (each
// ordinal waits for the one before it), one with Parallel, and a
// Deployment, side by side. The StatefulSets' replicas each get a claim
// of their own (provisioned on first use).
func BenchmarkTwentyToReady(b *testing.B) {
	for _, c := range []struct{ name, kind, doc string }{
		{"StatefulSetOrderedReady", "StatefulSet", benchStateful("OrderedReady")},
		{"StatefulSetParallel", "StatefulSet", benchStateful("Parallel")},
		{"Deployment", "Deployment", deployment("twenty", 20, trapSleep)},
	} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				e := newEnv(b)
				o := e.opts(b, "node-1")
				ag := startAgent(b, o)
				e.work.WriteFile("twenty.yaml", c.doc)
				e.work.Commit("twenty")
				start := time.Now()
				e.work.Push()
				waitFor(b, "20 ready", 180*time.Second, func() (bool, string) {
					rs, err := replicasOf(ag.api, c.kind, "twenty")
					if err != nil {
						return false, err.Error()
					}
					ready := 0
					for _, r := range rs {
						if r.Status.Ready {
							ready++
						}
					}
					return ready == 20, fmt.Sprint(ready)
				})
				total += time.Since(start)
				ag.kill()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/push-to-20-ready")
		})
	}
}

func benchStateful(policy string) string {
	s := statefulSet("twenty", 20, "1", policy)
	// Ready as soon as it runs: the time measured is driftless's.
	s = strings.Replace(s, "sleep 2; touch /tmp/ready; ", "touch /tmp/ready; ", 1)
	return strings.Replace(s, "            periodSeconds: 1\n", "            periodSeconds: 1\n            initialDelaySeconds: 0\n", 1)
}
