package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
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

// BenchmarkFailover3 and BenchmarkFailover20 run a local cluster of agent
// processes with default gossip and grace settings and measure, in
// seconds: leader killed -> the new leader's first status commit (a
// higher term on the branch), and a follower killed -> its replica
// running on another node.
func BenchmarkFailover3(b *testing.B)  { benchFailover(b, 3) }
func BenchmarkFailover20(b *testing.B) { benchFailover(b, 20) }

func benchFailover(b *testing.B, n int) {
	e := newEnv(b)
	key := writeKey(b, "0123456789abcdef")
	e.work.WriteFile("web.yaml", deployment("web", n, trapSleep))
	e.work.Commit(fmt.Sprintf("web x%d", n))
	e.work.Push()

	names := make([]string, n)
	gossip := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%02d", i)
		gossip[i] = freeGossipAddr(b)
	}
	// Nodes of a real cluster each have their own containerd; here they
	// share one, where twenty concurrent imports of one archive take
	// minutes. Import once per namespace first.
	for _, name := range names {
		ctx := namespaces.WithNamespace(context.Background(), ns+"-"+name)
		if _, err := importArchive(ctx, e.client, filepath.Join(e.images, "busybox.tar")); err != nil {
			b.Fatal(err)
		}
	}
	agents := map[string]*agentProc{}
	opts := map[string]agentOpts{}
	for i, name := range names {
		o := e.opts(b, name)
		o.namespace = ns + "-" + name
		o.poll = "1s"
		seeds := []string{gossip[(i+1)%n], gossip[(i+2)%n]}
		o.extra = []string{"--gossip", gossip[i], "--join", strings.Join(seeds, ","), "--gossip-key-file", key,
			"--bootstrap-expect", fmt.Sprint(n), "--log-level", "info"}
		opts[name] = o
		agents[name] = startAgent(b, o)
	}
	runningOn := func(nodes []string) int {
		total := 0
		for _, name := range nodes {
			total += running(listTasksIn(b, e.client, ns+"-"+name, "web"))
		}
		return total
	}
	waitFor(b, "every replica running", 5*time.Minute, func() (bool, string) {
		got := runningOn(names)
		return got == n, fmt.Sprintf("%d of %d", got, n)
	})
	out := statusText(b, e.bin, e.url)
	leader, term := "", termOf(out)
	for _, name := range names {
		if strings.Contains(out, name+" (term ") {
			leader = name
		}
	}
	if leader == "" {
		b.Fatalf("no leader:\n%s", out)
	}

	b.ResetTimer()
	start := time.Now()
	agents[leader].kill()
	waitFor(b, "a new leader's first commit", 2*time.Minute, func() (bool, string) {
		return termOf(statusText(b, e.bin, e.url)) > term, ""
	})
	failover := time.Since(start)

	// The old leader comes back; then kill a follower: its replica runs
	// elsewhere once gossip declares it dead and the node grace (default
	// 10s) ends.
	agents[leader] = startAgent(b, opts[leader])
	waitFor(b, "the cluster settles with every node back", 2*time.Minute, func() (bool, string) {
		return runningOn(names) == n, ""
	})
	out = statusText(b, e.bin, e.url)
	victim := ""
	var alive []string
	for _, name := range names {
		if victim == "" && !strings.Contains(out, name+" (term ") {
			victim = name
			continue
		}
		alive = append(alive, name)
	}
	start = time.Now()
	agents[victim].kill()
	waitFor(b, "the victim's replica running elsewhere", 3*time.Minute, func() (bool, string) {
		got := runningOn(alive)
		return got == n, fmt.Sprintf("%d of %d on live nodes", got, n)
	})
	moved := time.Since(start)
	b.StopTimer()
	b.ReportMetric(failover.Seconds(), "s/leader-failover")
	b.ReportMetric(moved.Seconds(), "s/node-loss-to-running")
}
