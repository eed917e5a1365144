package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd"

	"driftless.dev/driftless/manifest"
)

// rollingDeployment is a Deployment of replicas with maxUnavailable 1,
// maxSurge 1 and a short progress deadline.
func rollingDeployment(name string, replicas int, script string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  progressDeadlineSeconds: 12
  minReadySeconds: 2
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: 1}
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", %[3]q]
`, name, replicas, script)
}

// Two agents, one Deployment of 4 rolled to a new template: a checker
// polling containerd all along never sees fewer than 3 replicas running
// (ready is running today; minReadySeconds keeps a container that runs
// for a moment before it crashes from counting as available); then a template whose container exits at
// once holds the rollout (3 old replicas keep running), is marked stalled
// after progressDeadlineSeconds, and a git revert rolls back.
func TestRollingUpdateKeepsAvailability(t *testing.T) {
	e := newEnv(t)
	bin, url, work, client := e.bin, e.url, e.work, e.client
	keyFile := writeKey(t, "0123456789abcdef0123456789abcdef")
	v1 := `trap "exit 0" TERM; sleep 1001 & wait`
	v2 := `trap "exit 0" TERM; sleep 1002 & wait`
	work.WriteFile("web.yaml", rollingDeployment("web", 4, v1))
	work.Commit("web x4")
	work.Push()

	names := []string{"node-1", "node-2"}
	gossip := map[string]string{"node-1": freeGossipAddr(t), "node-2": freeGossipAddr(t)}
	for _, n := range names {
		other := gossip["node-1"]
		if n == "node-1" {
			other = gossip["node-2"]
		}
		o := e.opts(t, n)
		o.namespace = ns + "-" + n
		o.extra = []string{"--gossip", gossip[n], "--join", other, "--gossip-key-file", keyFile,
			"--bootstrap-expect", "2", "--status-poll", "1s"}
		startAgent(t, o)
	}

	// byCmd counts running replicas of web per command line, on both nodes.
	byCmd := func(c *containerd.Client) (map[string]int, int) {
		out, total := map[string]int{}, 0
		for _, n := range names {
			for _, tk := range listTasksIn(t, c, ns+"-"+n, "web") {
				if tk.Status == "running" {
					out[tk.Cmd]++
					total++
				}
			}
		}
		return out, total
	}
	cmdOf := func(script string) string { return "sh -c " + script }

	waitFor(t, "4 replicas of v1 running", 90*time.Second, func() (bool, string) {
		m, _ := byCmd(client)
		return m[cmdOf(v1)] == 4, fmt.Sprint(m)
	})

	// The checker: from here on, never fewer than 3 running.
	var (
		stop    atomic.Bool
		mu      sync.Mutex
		low     = 4
		lowSeen string
		polls   int
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			m, total := byCmd(client)
			mu.Lock()
			polls++
			if total < low {
				low, lowSeen = total, fmt.Sprint(m)
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	checkLow := func(what string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if low < 3 {
			t.Fatalf("%s: only %d replicas running at one point (%s); maxUnavailable 1 of 4 allows 3", what, low, lowSeen)
		}
		t.Logf("%s: %d containerd polls, fewest running %d", what, polls, low)
	}
	defer func() { stop.Store(true); wg.Wait() }()

	start := time.Now()
	work.WriteFile("web.yaml", rollingDeployment("web", 4, v2))
	work.Commit("web: new template")
	work.Push()
	path := "placements/default/Deployment.web.yaml"
	var p manifest.Placement
	waitFor(t, "rollout to v2 complete", 120*time.Second, func() (bool, string) {
		m, _ := byCmd(client)
		p, _ = statusFile(t, work.Dir, path)
		return m[cmdOf(v2)] == 4 && len(m) == 1 && p.Rollout.Complete(), fmt.Sprintf("%v %+v", m, p.Rollout)
	})
	t.Logf("rollout of 4 replicas took %s", time.Since(start).Round(100*time.Millisecond))
	checkLow("rollout to v2")
	log := gitOut(t, work.Dir, "log", "--format=%B", "origin/driftless/status")
	if n := strings.Count(log, "roll default/web: "); n < 4 {
		t.Fatalf("the first rollout and a rollout of 4 with maxUnavailable 1 take at least 4 status commits, log has %d:\n%s", n, log)
	}

	// A template that never becomes ready: the rollout holds, 3 old
	// replicas keep running, and it is marked stalled.
	work.WriteFile("web.yaml", rollingDeployment("web", 4, "exit 1"))
	work.Commit("web: broken template")
	work.Push()
	waitFor(t, "broken rollout marked stalled", 90*time.Second, func() (bool, string) {
		p, _ = statusFile(t, work.Dir, path)
		return p.Rollout.Stalled(), fmt.Sprintf("%+v", p.Rollout)
	})
	if p.Rollout.Progressing != "False" || p.Rollout.Reason != manifest.ReasonProgressDeadlineExceeded {
		t.Fatalf("stalled condition: %+v", p.Rollout)
	}
	m, _ := byCmd(client)
	if m[cmdOf(v2)] != 3 {
		t.Fatalf("a stalled rollout keeps 3 of 4 old replicas running, got %v", m)
	}
	checkLow("broken rollout")
	out := statusText(t, bin, url)
	if !strings.Contains(out, "stalled") {
		t.Fatalf("driftless status should say the rollout is stalled:\n%s", out)
	}

	// git revert rolls back.
	gitOut(t, work.Dir, "revert", "--no-edit", "HEAD")
	work.Push()
	waitFor(t, "revert rolled back to v2", 90*time.Second, func() (bool, string) {
		m, _ := byCmd(client)
		p, _ = statusFile(t, work.Dir, path)
		return m[cmdOf(v2)] == 4 && len(m) == 1 && p.Rollout.Complete(), fmt.Sprintf("%v %+v", m, p.Rollout)
	})
	checkLow("revert")
}
