package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

// daemonEnv is an env whose agents reach the desired repository through
// a git daemon the test can stop, start or hang; the person pushes to the
// bare repository directly.
type daemonEnv struct {
	env
	daemon *testenv.Daemon
	bare   string // the repository's directory
}

func newDaemonEnv(t *testing.T) *daemonEnv {
	t.Helper()
	e := &daemonEnv{env: env{bin: buildBinary(t), cd: testenv.StartContainerd(t)}}
	e.images = filepath.Dir(testenv.BusyboxArchive(t))
	base := t.TempDir()
	bareDir := filepath.Join(base, "desired.git")
	e.bare = bareDir
	testenv.InitBareRepo(t, bareDir)
	e.daemon = testenv.GitDaemon(t, base)
	e.url = e.daemon.URL + "/desired.git"
	e.work = testenv.NewWorkClone(t, "file://"+bareDir)
	e.client = e.cd.Client(t)
	return e
}

// Git unreachable: the commit in force keeps running, /healthz answers,
// the API says the source is failing, and a restarted agent comes back with
// its last state without Git. When Git returns, new commits apply again.
func TestGitUnreachableKeepsRunning(t *testing.T) {
	e := newDaemonEnv(t)
	work, client, daemon := e.work, e.client, e.daemon
	work.WriteFile("app.yaml", deployment("keep", 2, trapSleep))
	work.Commit("keep: 2")
	work.Push()

	opts := e.opts(t, "node-1")
	ag := startAgent(t, opts)
	waitFor(t, "2 replicas", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "keep")
		return running(ts) == 2, fmt.Sprintf("%+v", ts)
	})
	before := listTasks(t, client, "keep")

	daemon.Stop(t)
	waitFor(t, "source reported failing", 20*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + opts.api + "/api/v1/status")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var s struct {
			Source struct {
				OK        bool   `json:"ok"`
				LastError string `json:"lastError"`
			} `json:"source"`
		}
		if err := decodeJSON(resp, &s); err != nil {
			return false, err.Error()
		}
		return !s.Source.OK && s.Source.LastError != "", fmt.Sprintf("%+v", s)
	})
	resp, err := http.Get("http://" + opts.api + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while Git is down: %v %v", resp, err)
	}
	resp.Body.Close()

	// Restart the agent while Git is down: it starts from its data dir.
	ag.kill()
	ag = startAgent(t, opts)
	waitFor(t, "agent up without Git", 20*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && len(s.Replicas) == 2, fmt.Sprintf("%+v %v", s, err)
	})
	time.Sleep(2 * time.Second)
	assertUnchanged(t, before, listTasks(t, client, "keep"))

	// Git is back: a new commit applies.
	daemon.Start(t)
	work.WriteFile("app.yaml", deployment("keep", 3, trapSleep))
	work.Commit("keep: 3")
	work.Push()
	waitFor(t, "3 replicas after Git returns", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "keep")
		return running(ts) == 3, fmt.Sprintf("%+v", ts)
	})
}

// An image that cannot be had leaves its replica pending with the reason;
// other workloads run. A containerd restart does not restart containers.
func TestMissingImageAndContainerdRestart(t *testing.T) {
	e := newEnv(t)
	bin, url, work, client, cd := e.bin, e.url, e.work, e.client, e.cd

	work.WriteFile("ok.yaml", deployment("ok", 1, trapSleep))
	work.WriteFile("missing.yaml", strings.Replace(deployment("missing", 1, trapSleep), "busybox:latest", "127.0.0.1:1/none/such:1.0", 1))
	work.Commit("one good, one missing image")
	work.Push()
	ag := startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "good replica running, missing one pending with reason", 60*time.Second, func() (bool, string) {
		s, err := ag.status()
		if err != nil {
			return false, err.Error()
		}
		phases := map[string]string{}
		for _, r := range s.Replicas {
			phases[r.Workload.Name] = r.Status.Phase + "/" + r.Status.Reason
		}
		return running(listTasks(t, client, "ok")) == 1 && strings.HasPrefix(phases["missing"], "Pending/ErrImagePull"), fmt.Sprintf("%v", phases)
	})
	waitFor(t, "reason on the status branch", 20*time.Second, func() (bool, string) {
		out, _ := exec.Command(bin, "status", "--repo", url).CombinedOutput()
		return strings.Contains(string(out), "ErrImagePull"), string(out)
	})

	before := listTasks(t, client, "ok")
	cd.Restart(t)
	time.Sleep(3 * time.Second)
	work.WriteFile("more.yaml", deployment("more", 1, trapSleep))
	work.Commit("more")
	work.Push()
	waitFor(t, "new workload after containerd restart", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, client, "more")) == 1, ""
	})
	assertUnchanged(t, before, listTasks(t, client, "ok"))
}

// A push to a file:// repository is applied at once (fsnotify), not at
// the next poll.
func TestLocalMirrorPushSeenWithoutPolling(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("a.yaml", deployment("watched", 1, trapSleep))
	e.work.Commit("v1")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.poll = "1h"
	startAgent(t, o)
	waitFor(t, "first replica", 60*time.Second, func() (bool, string) { return running(listTasks(t, e.client, "watched")) == 1, "" })
	e.work.WriteFile("a.yaml", deployment("watched", 2, trapSleep))
	e.work.Commit("v2")
	e.work.Push()
	waitFor(t, "second replica without a poll", 10*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "watched")) == 2, ""
	})
}

// A force push that rewinds main is refused and recorded; the commit in
// force keeps running; history that moves forward again is accepted.
func TestForcePushRefused(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("a.yaml", deployment("ff", 1, "echo v1; "+trapSleep))
	v1 := e.work.Commit("v1")
	e.work.Push()
	o := e.opts(t, "node-1")
	ag := startAgent(t, o)
	e.work.WriteFile("a.yaml", deployment("ff", 1, "echo v2; "+trapSleep))
	e.work.Commit("v2")
	e.work.Push()
	waitFor(t, "v2 running", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "ff")
		return len(ts) == 1 && ts[0].Status == "running" && strings.Contains(ts[0].Cmd, "echo v2"), fmt.Sprintf("%+v", ts)
	})
	running := listTasks(t, e.client, "ff")
	testenv.Git(t, e.work.Dir, "push", "-q", "-f", "origin", v1+":refs/heads/main")
	waitFor(t, "force push refused", 20*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && s.LastRejection != nil && s.LastRejection.Commit == v1 &&
			strings.Contains(strings.Join(s.LastRejection.Errors, ""), "does not descend"), fmt.Sprintf("%+v", s)
	})
	time.Sleep(time.Second)
	assertUnchanged(t, running, listTasks(t, e.client, "ff"))

	e.work.WriteFile("a.yaml", deployment("ff", 1, "echo v3; "+trapSleep))
	e.work.Commit("v3 on top of v2")
	testenv.Git(t, e.work.Dir, "push", "-q", "-f", "origin", "main")
	waitFor(t, "v3 running", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "ff")
		return len(ts) == 1 && ts[0].Status == "running" && strings.Contains(ts[0].Cmd, "echo v3"), fmt.Sprintf("%+v", ts)
	})
}

// With --verify head, an unsigned head is refused and recorded like an
// invalid commit: nothing runs from it.
func TestUnsignedCommitRefused(t *testing.T) {
	e := newEnv(t)
	keys := filepath.Join(t.TempDir(), "trusted.asc")
	if err := os.WriteFile(keys, []byte(testPublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	e.work.WriteFile("a.yaml", deployment("unsigned", 1, trapSleep))
	c := e.work.Commit("unsigned")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.extra = []string{"--verify", "head", "--trusted-keys", keys}
	ag := startAgent(t, o)
	waitFor(t, "unsigned head refused", 30*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && s.LastRejection != nil && s.LastRejection.Commit == c &&
			strings.Contains(strings.Join(s.LastRejection.Errors, ""), "not signed"), fmt.Sprintf("%+v %v", s, err)
	})
	if n := len(listTasks(t, e.client, "unsigned")); n != 0 {
		t.Fatalf("%d containers from an unsigned commit", n)
	}
}
