package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"driftless.dev/driftless/internal/testenv"
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

// A Git server that accepts connections and never answers: fetches and
// status reads time out, are logged once and retried; the node loop
// carries on (a SIGKILLed container is restarted after its usual
// back-off), /healthz answers, the API says the source is degraded, and
// when the server answers again a new commit applies within a poll or two.
func TestHungGitServer(t *testing.T) {
	bin := buildBinary(t)
	cd := testenv.StartContainerd(t)
	images := filepath.Dir(testenv.BusyboxArchive(t))
	base := t.TempDir()
	bareDir := filepath.Join(base, "desired.git")
	testenv.InitBareRepo(t, bareDir)
	daemon := testenv.GitDaemon(t, base)
	url := daemon.URL + "/desired.git"
	work := testenv.NewWorkClone(t, "file://"+bareDir)
	client := cd.Client(t)

	work.WriteFile("app.yaml", deployment("crash", 1, trapSleep))
	work.Commit("crash: 1")
	work.Push()
	dataDir := t.TempDir()
	t.Cleanup(func() { testenv.UnmountBelow(dataDir) })
	opts := agentOpts{bin: bin, node: "node-1", repo: url, dataDir: dataDir, sock: cd.Address, images: images, api: freePort(t),
		extra: []string{"--fetch-timeout", "3s", "--status-timeout", "3s"}}
	ag := startAgent(t, opts)
	waitFor(t, "replica running", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "crash")
		return running(ts) == 1, fmt.Sprintf("%+v", ts)
	})

	daemon.Hang(t)
	waitFor(t, "source degraded in the API", 20*time.Second, func() (bool, string) {
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
		return strings.Contains(strings.Join(s.Degraded, ","), "source"), fmt.Sprint(s.Degraded)
	})

	before := listTasks(t, client, "crash")
	killTask(t, client, before[0].ID)
	killed := time.Now()
	waitFor(t, "killed container restarted while Git hangs", 40*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "crash")
		return running(ts) == 1 && ts[0].PID != before[0].PID, fmt.Sprintf("%+v", ts)
	})
	t.Logf("SIGKILLed container restarted after %s while every fetch hangs", time.Since(killed).Round(100*time.Millisecond))
	resp, err := http.Get("http://" + opts.api + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while Git hangs: %v %v", resp, err)
	}
	resp.Body.Close()
	logs := ag.logs.String()
	if !strings.Contains(logs, "deadline exceeded") {
		t.Fatalf("no fetch timed out:\n%s", tail(logs, 40))
	}
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
