package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"github.com/containerd/containerd"
)

// loggerDaemonSet is a DaemonSet whose one container stops at once on
// SIGTERM.
var loggerDaemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: logger}
spec:
  selector: {matchLabels: {app: logger}}
  template:
    metadata: {labels: {app: logger}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
` + busyboxContainer("        ", "main", trapSleep)

// startCluster starts one agent per name, all gossiping with each other
// (one gossip key, bootstrap-expect all, a 2-s node grace), each in its
// own containerd namespace ns-<name>.
func startCluster(t *testing.T, e *env, names []string) (map[string]agentOpts, map[string]*agentProc) {
	t.Helper()
	keyFile := writeKey(t, "0123456789abcdef0123456789abcdef")
	gossip := map[string]string{}
	for _, n := range names {
		gossip[n] = freeGossipAddr(t)
	}
	agents := map[string]*agentProc{}
	opts := map[string]agentOpts{}
	for _, n := range names {
		var seeds []string
		for _, m := range names {
			if m != n {
				seeds = append(seeds, gossip[m])
			}
		}
		o := e.opts(t, n)
		o.namespace = ns + "-" + n
		o.extra = []string{"--gossip", gossip[n], "--join", strings.Join(seeds, ","),
			"--gossip-key-file", keyFile, "--bootstrap-expect", fmt.Sprint(len(names)), "--node-grace", "2s", "--status-poll", "1s"}
		opts[n] = o
		agents[n] = startAgent(t, opts[n])
	}
	return opts, agents
}

func freeGossipAddr(t testing.TB) string { return testenv.FreeGossipAddr(t) }

// Three agent processes, one private containerd (a namespace per node),
// one status branch: replicas spread, a DaemonSet runs everywhere, the
// lowest node name leads; when the leader is killed another takes over
// with a higher term and the dead node's replicas move after the grace.
func TestClusterOfThree(t *testing.T) {
	e := newEnv(t)
	bin, url, work, client := e.bin, e.url, e.work, e.client
	work.WriteFile("web.yaml", deployment("web", 3, trapSleep))
	work.WriteFile("agent.yaml", loggerDaemonSet)
	work.Commit("web x3 and a daemonset")
	work.Push()

	names := []string{"node-1", "node-2", "node-3"}
	opts, agents := startCluster(t, e, names)

	perNode := func(c *containerd.Client, workload string, nodes []string) map[string]int {
		out := map[string]int{}
		for _, n := range nodes {
			out[n] = running(listTasksIn(t, c, ns+"-"+n, workload))
		}
		return out
	}
	waitFor(t, "web spread one per node and the daemonset everywhere", 90*time.Second, func() (bool, string) {
		w, d := perNode(client, "web", names), perNode(client, "logger", names)
		return fmt.Sprint(w) == "map[node-1:1 node-2:1 node-3:1]" && fmt.Sprint(d) == "map[node-1:1 node-2:1 node-3:1]", fmt.Sprintf("web %v logger %v", w, d)
	})
	out := statusText(t, bin, url)
	if !strings.Contains(out, "node-1 (term ") {
		t.Fatalf("node-1 should lead:\n%s", out)
	}
	// Every node reports that it reached the desired commit in force.
	waitFor(t, "every node reached the desired commit", 30*time.Second, func() (bool, string) {
		js, _ := execOut(bin, "status", "--repo", url, "-o", "json")
		var st struct {
			Cluster struct {
				DesiredCommit string `json:"desiredCommit"`
			} `json:"cluster"`
			Nodes map[string]struct {
				Reached string `json:"desiredCommitReached"`
			} `json:"nodes"`
		}
		if json.Unmarshal([]byte(js), &st) != nil || st.Cluster.DesiredCommit == "" {
			return false, js
		}
		for _, n := range names {
			if st.Nodes[n].Reached != st.Cluster.DesiredCommit {
				return false, js
			}
		}
		return true, ""
	})
	firstTerm := termOf(out)

	// Kill the leader: node-2 takes over with a higher term, node-1's web
	// replica moves to node-2 or node-3 after the grace period.
	agents["node-1"].kill()
	alive := []string{"node-2", "node-3"}
	waitFor(t, "node-2 leads and web has 3 running replicas on the live nodes", 90*time.Second, func() (bool, string) {
		out := statusText(t, bin, url)
		w := perNode(client, "web", alive)
		return strings.Contains(out, "node-2 (term ") && termOf(out) > firstTerm && w["node-2"]+w["node-3"] == 3, fmt.Sprintf("%v\n%s", w, out)
	})
	// The dead node's containers were not touched by anyone.
	if n := running(listTasksIn(t, client, ns+"-node-1", "web")); n != 1 {
		t.Fatalf("node-1's container should be left alone while its agent is down, got %d running", n)
	}
	// node-1 comes back: it removes the replica no longer placed on it.
	agents["node-1"] = startAgent(t, opts["node-1"])
	waitFor(t, "node-1 removes its old web replica", 90*time.Second, func() (bool, string) {
		w := perNode(client, "web", names)
		return w["node-1"] == 0 && w["node-2"]+w["node-3"] == 3, fmt.Sprint(w)
	})

	// Drain by commit: a NoExecute taint on node-3 moves everything off it,
	// the DaemonSet's replica too; a cordon on node-2 keeps what runs there.
	work.WriteFile("nodes.yaml", `apiVersion: driftless.dev/v1
kind: Node
metadata: {name: node-3}
spec:
  taints: [{key: maintenance, effect: NoExecute}]
---
apiVersion: driftless.dev/v1
kind: Node
metadata: {name: node-2}
spec:
  unschedulable: true
`)
	work.Commit("drain node-3, cordon node-2")
	work.Push()
	before2 := perNode(client, "web", []string{"node-2"})["node-2"]
	waitFor(t, "node-3 drained", 60*time.Second, func() (bool, string) {
		w, d := perNode(client, "web", names), perNode(client, "logger", names)
		return w["node-3"] == 0 && d["node-3"] == 0 && w["node-1"]+w["node-2"] == 3 && w["node-2"] == before2, fmt.Sprintf("web %v logger %v", w, d)
	})

	// Every status commit names its leader and term.
	log := gitOut(t, work.Dir, "log", "--format=%(trailers:key=Leader,valueonly,separator=)|%(trailers:key=Term,valueonly,separator=)", "origin/driftless/status")
	if !strings.Contains(log, "node-1|") || !strings.Contains(log, "node-2|") {
		t.Fatalf("status log does not show both leaders:\n%s", log)
	}
}

func statusText(t testing.TB, bin, url string) string {
	out, _ := execOut(bin, "status", "--repo", url)
	return out
}

func termOf(statusOut string) int {
	i := strings.Index(statusOut, "(term ")
	if i < 0 {
		return -1
	}
	var n int
	fmt.Sscanf(statusOut[i+6:], "%d", &n)
	return n
}
