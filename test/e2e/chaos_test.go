package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// liveReplica is a running replica as a node's containerd has it.
type liveReplica struct {
	key      string // workload/index
	specHash string
	pid      uint32
}

// runningReplicas lists the replicas with a running container in a node's
// containerd namespace, by workload/index.
func runningReplicas(t testing.TB, c *containerd.Client, namespace string) map[string]liveReplica {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), namespace)
	cs, err := c.Containers(ctx)
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	out := map[string]liveReplica{}
	for _, ctr := range cs {
		l, err := ctr.Labels(ctx)
		if err != nil || l[reconcile.LabelWorkload] == "" {
			continue
		}
		tsk, err := ctr.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := tsk.Status(ctx)
		if err != nil || st.Status != containerd.Running {
			continue
		}
		k := l[reconcile.LabelWorkload] + "/" + l[reconcile.LabelReplica]
		out[k] = liveReplica{key: k, specHash: l[reconcile.LabelSpecHash], pid: tsk.Pid()}
	}
	return out
}

// agreement compares the status branch with what runs on the live nodes
// and what each node's API says: every replica row bound to a live node
// is Running and ready with the spec hash, IP and restarts of what runs
// there, and nothing runs on a live node that no row binds to it. It
// returns "" when they agree, else what differs.
func agreement(t testing.TB, c *containerd.Client, url string, live map[string]*agentProc) string {
	t.Helper()
	st, err := status.ReadState(context.Background(), url, "driftless/status", git.Auth{})
	if err != nil {
		return err.Error()
	}
	var diffs []string
	bound := map[string]map[string]manifest.ReplicaPlacement{}
	for ref, p := range st.Placements {
		for _, r := range p.Replicas {
			if _, ok := live[r.Node]; !ok {
				continue
			}
			if bound[r.Node] == nil {
				bound[r.Node] = map[string]manifest.ReplicaPlacement{}
			}
			bound[r.Node][ref.Name+"/"+strconv.Itoa(r.Index)] = r
		}
	}
	for node, ag := range live {
		running := runningReplicas(t, c, ns+"-"+node)
		api, err := ag.status()
		if err != nil {
			return fmt.Sprintf("%s API: %v", node, err)
		}
		ips := map[string]string{}
		for _, r := range api.Replicas {
			ips[r.Workload.Name+"/"+strconv.Itoa(r.Index)] = r.Status.PodIP
		}
		for k, r := range bound[node] {
			got, ok := running[k]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("%s: %s bound here but not running", node, k))
			case r.Status == nil || r.Status.Phase != manifest.PhaseRunning || !r.Status.Ready:
				diffs = append(diffs, fmt.Sprintf("%s: %s runs but the branch says %+v", node, k, r.Status))
			case got.specHash != r.SpecHash:
				diffs = append(diffs, fmt.Sprintf("%s: %s runs spec %s, branch %s", node, k, got.specHash, r.SpecHash))
			case r.Status.PodIP != ips[k]:
				diffs = append(diffs, fmt.Sprintf("%s: %s has IP %s, branch says %s", node, k, ips[k], r.Status.PodIP))
			}
		}
		for k := range running {
			if _, ok := bound[node][k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: %s runs but no row binds it here", node, k))
			}
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}

func waitAgreement(t *testing.T, step string, c *containerd.Client, url string, live map[string]*agentProc) {
	t.Helper()
	start := time.Now()
	waitFor(t, step+": the status branch agrees with the containers", 90*time.Second, func() (bool, string) {
		d := agreement(t, c, url, live)
		return d == "", d
	})
	t.Logf("%s: agreed after %s", step, time.Since(start).Round(100*time.Millisecond))
}

// Several agent kills past the node grace and back, a leader kill, a
// containerd restart and a rollout after an agent restart, with the
// agents built -race: after each step settles the status branch agrees
// with the containers (node, phase, ready, IP, spec), DaemonSet
// containers of a returning node keep their PIDs, and no agent reports a
// data race (startAgent's cleanup fails the test on one).
func TestChaosRecordStaysTrue(t *testing.T) {
	e := newEnv(t)
	client := e.client
	e.work.WriteFile("web.yaml", deployment("web", 3, trapSleep))
	e.work.WriteFile("logger.yaml", loggerDaemonSet)
	e.work.Commit("web x3 and a daemonset")
	e.work.Push()
	names := []string{"node-1", "node-2", "node-3"}
	opts, live := startCluster(t, e, names)
	waitAgreement(t, "start", client, e.url, live)
	loggerPID := func(node string) uint32 {
		return runningReplicas(t, client, ns+"-"+node)["logger/"+dsIndex(t, e.url, node)].pid
	}

	// Followers killed past the grace and back, one after the other.
	for _, n := range []string{"node-3", "node-2"} {
		pid := loggerPID(n)
		live[n].kill()
		delete(live, n)
		waitFor(t, n+"'s web replica moved to the live nodes", 90*time.Second, func() (bool, string) {
			w := 0
			for m := range live {
				w += running(listTasksIn(t, client, ns+"-"+m, "web"))
			}
			return w == 3, fmt.Sprint(w)
		})
		waitAgreement(t, n+" down past the grace", client, e.url, live)
		live[n] = startAgent(t, opts[n])
		waitAgreement(t, n+" back", client, e.url, live)
		if got := loggerPID(n); got != pid {
			t.Fatalf("%s's DaemonSet container was restarted on its return: PID %d, was %d", n, got, pid)
		}
	}

	// The leader killed and back.
	pid := loggerPID("node-1")
	term := termOf(statusText(t, e.bin, e.url))
	live["node-1"].kill()
	delete(live, "node-1")
	waitFor(t, "a new leader moved node-1's web replica", 90*time.Second, func() (bool, string) {
		out := statusText(t, e.bin, e.url)
		w := 0
		for m := range live {
			w += running(listTasksIn(t, client, ns+"-"+m, "web"))
		}
		return termOf(out) > term && !strings.Contains(out, "node-1 (term ") && w == 3, fmt.Sprintf("%d running\n%s", w, out)
	})
	waitAgreement(t, "leader down", client, e.url, live)
	live["node-1"] = startAgent(t, opts["node-1"])
	waitAgreement(t, "leader back", client, e.url, live)
	if got := loggerPID("node-1"); got != pid {
		t.Fatalf("node-1's DaemonSet container was restarted on its return: PID %d, was %d", got, pid)
	}

	// containerd restarted: nothing restarts, the record stays true.
	before := map[string]map[string]liveReplica{}
	for _, n := range names {
		before[n] = runningReplicas(t, client, ns+"-"+n)
	}
	e.cd.Restart(t)
	client = e.cd.Client(t)
	waitAgreement(t, "containerd restarted", client, e.url, live)
	for _, n := range names {
		after := runningReplicas(t, client, ns+"-"+n)
		for k, r := range before[n] {
			if after[k].pid != r.pid {
				t.Fatalf("%s: %s restarted by a containerd restart (PID %d → %d)", n, k, r.pid, after[k].pid)
			}
		}
	}

	// A rollout right after an agent restart completes.
	live["node-2"].kill()
	live["node-2"] = startAgent(t, opts["node-2"])
	e.work.WriteFile("web.yaml", deployment("web", 3, "echo v2; "+trapSleep))
	e.work.Commit("web v2")
	e.work.Push()
	waitFor(t, "rollout to v2 complete", 120*time.Second, func() (bool, string) {
		n := 0
		for _, node := range names {
			for _, tk := range listTasksIn(t, client, ns+"-"+node, "web") {
				if tk.Status == "running" && strings.Contains(tk.Cmd, "echo v2") {
					n++
				}
			}
		}
		return n == 3, fmt.Sprint(n)
	})
	waitAgreement(t, "rollout after an agent restart", client, e.url, live)
}

// dsIndex is the replica index of the logger DaemonSet on node, from
// the status branch.
func dsIndex(t testing.TB, url, node string) string {
	t.Helper()
	st, err := status.ReadState(context.Background(), url, "driftless/status", git.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	for ref, p := range st.Placements {
		if ref.Name != "logger" {
			continue
		}
		for _, r := range p.Replicas {
			if r.Node == node {
				return strconv.Itoa(r.Index)
			}
		}
	}
	t.Fatalf("no logger replica on %s", node)
	return ""
}
