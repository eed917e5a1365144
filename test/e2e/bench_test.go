package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// trapSleep exits on SIGTERM (a shell as PID 1 otherwise ignores it and
// every replacement would wait out the grace period).
const trapSleep = `trap "exit 0" TERM; sleep 1000 & wait`

// BenchmarkPushToRunning measures, for one replica, the time from `git push`
// of a changed command to the replacement container running. The agent
// polls every 250ms, so on average about 125ms of it is polling delay.
func BenchmarkPushToRunning(b *testing.B) {
	e := newEnv(b)
	work, client := e.work, e.client

	work.WriteFile("apps/bench.yaml", deployment("bench", 1, "echo v0; "+trapSleep))
	work.Commit("bench v0")
	work.Push()
	o := e.opts(b, "node-1")
	o.poll = "250ms"
	startAgent(b, o)
	waitFor(b, "first replica", 60*time.Second, func() (bool, string) { return running(listTasks(b, client, "bench")) == 1, "" })

	var total time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		marker := fmt.Sprintf("echo v%d", i)
		work.WriteFile("apps/bench.yaml", deployment("bench", 1, marker+"; "+trapSleep))
		work.Commit(fmt.Sprintf("bench v%d", i))
		start := time.Now()
		work.Push()
		waitFor(b, "replacement", 60*time.Second, func() (bool, string) {
			ts := listTasks(b, client, "bench")
			return len(ts) == 1 && ts[0].Status == "running" && strings.Contains(ts[0].Cmd, marker), ""
		})
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/push-to-running")
}
