package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// stubborn is a Deployment whose PID 1 ignores SIGTERM (as busybox sh and
// many real images do), so it takes its whole grace period to stop.
func stubborn(name string, replicas, grace int) string {
	return strings.Replace(deployment(name, replicas, "trap '' TERM; while true; do sleep 1; done"),
		"terminationGracePeriodSeconds: 1", fmt.Sprintf("terminationGracePeriodSeconds: %d", grace), 1)
}

// A replica that takes its whole 30-s grace period to stop delays only
// itself: another Deployment scaled right after gets its new replica
// within seconds, while the old one is still stopping.
func TestSlowStopDelaysOnlyItsReplica(t *testing.T) {
	e := newEnv(t)
	work, client := e.work, e.client
	work.WriteFile("slow.yaml", stubborn("slow", 1, 30))
	work.WriteFile("fast.yaml", deployment("fast", 1, trapSleep))
	work.Commit("slow and fast")
	work.Push()
	ag := startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "slow and fast running", 60*time.Second, func() (bool, string) {
		s, f := listTasks(t, client, "slow"), listTasks(t, client, "fast")
		return running(s) == 1 && running(f) == 1, fmt.Sprintf("slow %+v fast %+v", s, f)
	})

	work.WriteFile("slow.yaml", stubborn("slow", 0, 30))
	work.Commit("slow: 0")
	work.Push()
	waitFor(t, "slow's replica unplaced (its container stopping)", 20*time.Second, func() (bool, string) {
		s, err := ag.status()
		for _, r := range s.Replicas {
			if r.Workload.Name == "slow" {
				return false, fmt.Sprintf("%+v", s.Replicas)
			}
		}
		return err == nil, fmt.Sprint(err)
	})
	work.WriteFile("fast.yaml", deployment("fast", 2, trapSleep))
	work.Commit("fast: 2")
	start := time.Now()
	work.Push()
	waitFor(t, "fast's second replica running", 10*time.Second, func() (bool, string) {
		f := listTasks(t, client, "fast")
		return running(f) == 2, fmt.Sprintf("%+v", f)
	})
	took := time.Since(start)
	if s := listTasks(t, client, "slow"); running(s) != 1 {
		t.Fatalf("slow's container should still be in its 30-s grace period: %+v", s)
	}
	t.Logf("push → second replica running while another replica stops through its grace: %s", took.Round(10*time.Millisecond))
	// The node's report reaches the status branch meanwhile too.
	waitFor(t, "both fast replicas Running on the status branch", 10*time.Second, func() (bool, string) {
		out := statusText(t, e.bin, e.url)
		return strings.Count(out, "Running") >= 2, out
	})
	waitFor(t, "slow's container gone after its grace", 45*time.Second, func() (bool, string) {
		s := listTasks(t, client, "slow")
		return len(s) == 0, fmt.Sprintf("%+v", s)
	})
}

// killTask SIGKILLs the task of container id.
func killTask(t testing.TB, c *containerd.Client, id string) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tsk, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tsk.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// A Git server that accepts connections and never answers, in place of
// the desired repository (the status branch lives in a local mirror):
// fetches time out (the default 30 s), are logged once and retried; the
// node loop carries on (a SIGKILLed container is restarted after its
// usual back-off), the leader commits the restart to the status branch
// meanwhile, /healthz answers, the API says the source is degraded, and
// when the server answers again a new commit applies within a poll or two.
func TestHungGitServer(t *testing.T) {
	e := newDaemonEnv(t)
	work, client, daemon := e.work, e.client, e.daemon
	work.WriteFile("app.yaml", deployment("crash", 1, trapSleep))
	work.Commit("crash: 1")
	work.Push()
	statusRepo := "file://" + e.bare
	opts := e.opts(t, "node-1")
	opts.extra = []string{"--status-repo", statusRepo}
	ag := startAgent(t, opts)
	waitFor(t, "replica running", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "crash")
		return running(ts) == 1, fmt.Sprintf("%+v", ts)
	})

	daemon.Hang(t)
	time.Sleep(time.Second) // the leader's next poll is now stuck in a fetch
	before := listTasks(t, client, "crash")
	killTask(t, client, before[0].ID)
	killed := time.Now()
	waitFor(t, "killed container restarted while Git hangs", 40*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "crash")
		return running(ts) == 1 && ts[0].PID != before[0].PID, fmt.Sprintf("%+v", ts)
	})
	t.Logf("SIGKILLed container restarted after %s while every fetch hangs", time.Since(killed).Round(100*time.Millisecond))
	restarted := time.Now()
	waitFor(t, "the restart on the status branch while the desired fetch hangs", 15*time.Second, func() (bool, string) {
		out, _ := execOut(e.bin, "status", "--repo", statusRepo, "-o", "json")
		var st struct {
			Placements []struct {
				Replicas []struct {
					Status *struct{ Restarts int } `json:"status"`
				} `json:"replicas"`
			} `json:"placements"`
		}
		if json.Unmarshal([]byte(out), &st) != nil {
			return false, out
		}
		for _, p := range st.Placements {
			for _, r := range p.Replicas {
				if r.Status != nil && r.Status.Restarts >= 1 {
					return true, ""
				}
			}
		}
		return false, out
	})
	t.Logf("restart committed %s after it happened, a desired fetch hanging meanwhile", time.Since(restarted).Round(100*time.Millisecond))
	// A fetch that ran into the switch may have failed at once (refused);
	// the hung ones fail at their deadline (30 s).
	waitFor(t, "a fetch timed out and the source is degraded in the API", 50*time.Second, func() (bool, string) {
		var s struct {
			Degraded []string `json:"degraded"`
		}
		resp, err := http.Get("http://" + opts.api + "/api/v1/status")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		if err := decodeJSON(resp, &s); err != nil {
			return false, err.Error()
		}
		timedOut := strings.Contains(ag.logs.String(), "deadline exceeded")
		return timedOut && strings.Contains(strings.Join(s.Degraded, ","), "source"), fmt.Sprint(s.Degraded, " timed out: ", timedOut)
	})
	resp, err := http.Get("http://" + opts.api + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while Git hangs: %v %v", resp, err)
	}
	resp.Body.Close()
	logs := ag.logs.String()
	if n := strings.Count(logs, "desired repository unavailable"); n > 2 {
		t.Fatalf("the hung fetch was logged %d times; want it once", n)
	}

	daemon.Start(t)
	work.WriteFile("app.yaml", deployment("crash", 2, trapSleep))
	work.Commit("crash: 2")
	back := time.Now()
	work.Push()
	waitFor(t, "new commit applied once Git answers", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "crash")
		return running(ts) == 2, fmt.Sprintf("%+v", ts)
	})
	t.Logf("Git back → new commit running: %s", time.Since(back).Round(10*time.Millisecond))
}

// A Deployment and a Pod of one name write separate log files, and
// `driftless logs` tells them apart (KIND/NAME, as kubectl writes it).
func TestSameNameDeploymentAndPodLogs(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("deploy.yaml", deployment("twin", 1, "echo from-deployment; "+trapSleep))
	e.work.WriteFile("pod.yaml", pod("twin", "echo from-pod; "+trapSleep))
	e.work.Commit("a Deployment and a Pod named twin")
	e.work.Push()
	o := e.opts(t, "node-1")
	startAgent(t, o)
	logs := func(args ...string) (string, error) {
		out, err := execOut(e.bin, append([]string{"logs", "--data-dir", o.dataDir}, args...)...)
		return out, err
	}
	waitFor(t, "both write their logs", 60*time.Second, func() (bool, string) {
		d, _ := logs("deployment/twin")
		p, _ := logs("pod/twin")
		return strings.Contains(d, "from-deployment") && strings.Contains(p, "from-pod"), d + " | " + p
	})
	if d, _ := logs("deploy/twin"); strings.Contains(d, "from-pod") {
		t.Fatalf("the Deployment's log holds the Pod's output: %q", d)
	}
	if p, _ := logs("twin", "--kind", "pod"); strings.Contains(p, "from-deployment") {
		t.Fatalf("the Pod's log holds the Deployment's output: %q", p)
	}
	out, err := logs("twin")
	if err == nil || !strings.Contains(out, "deployment, pod") {
		t.Fatalf("an ambiguous name should list the kinds: %v %q", err, out)
	}
}

// A sidecar's hostPort is the pod's as much as an app container's: two
// replicas on one node cannot both publish it, so one stays Pending
// with the reason.
func TestSidecarHostPortPending(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	_, p, _ := strings.Cut(port, ":")
	sidecar := busyboxContainer("        ", "proxy", trapSleep) +
		fmt.Sprintf("          restartPolicy: Always\n          ports: [{containerPort: 15001, hostPort: %s}]\n", p)
	e.work.WriteFile("proxied.yaml", strings.Replace(deployment("proxied", 2, trapSleep), "      containers:\n", "      initContainers:\n"+sidecar+"      containers:\n", 1))
	e.work.Commit("proxied: 2 replicas, sidecar with a hostPort")
	e.work.Push()
	startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "one replica running, the other Pending for the host port", 60*time.Second, func() (bool, string) {
		out := statusText(t, e.bin, e.url)
		ts := listTasks(t, e.client, "proxied")
		return running(ts) == 2 && strings.Contains(out, "host port in use"), fmt.Sprintf("%s\n%+v", out, ts) // sidecar + app of one replica
	})
	time.Sleep(2 * time.Second)
	if ts := listTasks(t, e.client, "proxied"); len(ts) != 2 {
		t.Fatalf("the second replica was started on the node: %+v", ts)
	}
}
