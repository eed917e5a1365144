package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/ociimage"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
)

type sourceView struct {
	Source struct {
		OK        bool   `json:"ok"`
		Head      string `json:"head"`
		Remote    string `json:"remote"`
		LastError string `json:"lastError"`
	} `json:"source"`
	Webhook struct {
		Accepted int `json:"accepted"`
		Invalid  int `json:"invalid"`
	} `json:"webhook"`
}

func (p *agentProc) source() (sourceView, error) {
	var v sourceView
	resp, err := http.Get("http://" + p.api + "/api/v1/status")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// deadURL is a git:// URL on a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	return "git://" + freePort(t) + "/fleet.git"
}

// The first URL of --repo is down: the agent deploys from the next one
// and says which it used.
func TestMirrorFailoverAgent(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("apps/web.yaml", deployment("web", 1, "sleep 1000"))
	c1 := e.work.Commit("web")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.repo = deadURL(t) + "," + e.url
	o.extra = []string{"--status-repo", e.url}
	ag := startAgent(t, o)
	waitFor(t, "1 running replica from the mirror", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		return running(ts) == 1, fmt.Sprintf("%+v", ts)
	})
	waitFor(t, "status to name the mirror", 10*time.Second, func() (bool, string) {
		v, err := ag.source()
		return err == nil && v.Source.OK && v.Source.Remote == e.url && v.Source.Head == c1, fmt.Sprintf("%+v %v", v, err)
	})
	ag.kill()
	if !strings.Contains(ag.logs.String(), "fetched from a mirror") {
		t.Fatal("the failover is not logged")
	}
}

// dropBundle writes a bundle into the inbox the way a careful person
// does: under another name, then renamed in.
func dropBundle(t *testing.T, src, inbox, name string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(inbox, "."+name+".part")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
		t.Fatal(err)
	}
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	var b []byte
	waitFor(t, path, 30*time.Second, func() (bool, string) {
		var err error
		b, err = os.ReadFile(path)
		return err == nil, fmt.Sprint(err)
	})
	return string(b)
}

// An agent with no reachable network remote deploys from bundles made
// with plain `git bundle create`; a bundle with missing prerequisites and
// one that does not fast-forward are rejected with a reason.
func TestBundleInbox(t *testing.T) {
	e := newEnv(t)
	_, statusURL := testenv.NewBareRepo(t)
	inbox := filepath.Join(t.TempDir(), "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	w := e.work

	w.WriteFile("apps/web.yaml", deployment("web", 1, "sleep 1000"))
	c1 := w.Commit("web: 1 replica")
	testenv.Git(t, w.Dir, "bundle", "create", "-q", filepath.Join(out, "b1.bundle"), "main")

	o := e.opts(t, "node-1")
	o.repo = deadURL(t)
	o.extra = []string{"--status-repo", statusURL, "--bundle-inbox", inbox}
	ag := startAgent(t, o)

	dropBundle(t, filepath.Join(out, "b1.bundle"), inbox, "b1.bundle")
	waitFor(t, "1 running replica from the bundle", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		return running(ts) == 1, fmt.Sprintf("%+v", ts)
	})
	waitFile(t, filepath.Join(inbox, "done", "b1.bundle"))
	if v, err := ag.source(); err != nil || v.Source.Head != c1 || v.Source.Remote != "bundle:b1.bundle" {
		t.Fatalf("source after the bundle: %+v %v", v, err)
	}

	// Missing prerequisites: built on c2, which the agent never got.
	w.WriteFile("apps/web.yaml", deployment("web", 2, "sleep 1000"))
	c2 := w.Commit("web: 2 replicas")
	w.WriteFile("apps/web.yaml", deployment("web", 2, "sleep 1001"))
	w.Commit("web: sleep longer")
	testenv.Git(t, w.Dir, "bundle", "create", "-q", filepath.Join(out, "b2.bundle"), c2+"..main")
	dropBundle(t, filepath.Join(out, "b2.bundle"), inbox, "b2.bundle")
	reason := waitFile(t, filepath.Join(inbox, "rejected", "b2.bundle.reason"))
	if !strings.Contains(reason, "missing prerequisite") || !strings.Contains(reason, c2[:12]) {
		t.Fatalf("reason: %q", reason)
	}

	// Not a fast-forward: an unrelated history for main.
	_, otherURL := testenv.NewBareRepo(t)
	other := testenv.NewWorkClone(t, otherURL)
	other.WriteFile("apps/web.yaml", deployment("web", 3, "sleep 1000"))
	forced := other.Commit("rewritten history")
	testenv.Git(t, other.Dir, "bundle", "create", "-q", filepath.Join(out, "b3.bundle"), "main")
	dropBundle(t, filepath.Join(out, "b3.bundle"), inbox, "b3.bundle")
	reason = waitFile(t, filepath.Join(inbox, "rejected", "b3.bundle.reason"))
	if !strings.Contains(reason, "does not descend") || !strings.Contains(reason, forced) {
		t.Fatalf("reason: %q", reason)
	}
	waitFor(t, "the non-fast-forward recorded", 10*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && s.LastRejection != nil && s.LastRejection.Commit == forced, fmt.Sprintf("%+v %v", s, err)
	})

	// An incremental bundle on what the site has is taken.
	testenv.Git(t, w.Dir, "bundle", "create", "-q", filepath.Join(out, "b4.bundle"), c1+"..main")
	dropBundle(t, filepath.Join(out, "b4.bundle"), inbox, "b4.bundle")
	waitFor(t, "2 running replicas from the incremental bundle", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		ok := running(ts) == 2 && len(ts) == 2
		for _, x := range ts {
			ok = ok && strings.Contains(x.Cmd, "sleep 1001")
		}
		return ok, fmt.Sprintf("%+v", ts)
	})
	waitFile(t, filepath.Join(inbox, "done", "b4.bundle"))
	if n := len(listTasks(t, e.client, "web")); n != 2 {
		t.Fatalf("%d containers after the rejected bundles", n)
	}
}

// A replica waiting for an image starts as soon as its archive is
// dropped into --images-dir, not at the end of its pull back-off.
func TestImagesDirWatch(t *testing.T) {
	e := newEnv(t)
	images := t.TempDir()
	const image = "example.test/airgap/late:v1"
	e.work.WriteFile("apps/late.yaml", strings.Replace(strings.Replace(deployment("late", 1, "sleep 1000"),
		"busybox:latest", image, 1), "IfNotPresent", "Never", 1))
	e.work.Commit("late")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.images = images
	ag := startAgent(t, o)
	// The second failure is in ImagePullBackOff, with 20 s to wait.
	waitFor(t, "the replica in ImagePullBackOff", 40*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && len(s.Replicas) == 1 && s.Replicas[0].Status.Reason == "ImagePullBackOff", fmt.Sprintf("%+v %v", s, err)
	})
	start := time.Now()
	if err := ociimage.BuildBusyboxFile(filepath.Join(images, "late.tar"), image); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica running", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "late")
		return running(ts) == 1, fmt.Sprintf("%+v", ts)
	})
	took := time.Since(start)
	t.Logf("replica running %s after the archive was dropped", took)
	if took >= reconcile.Backoff(1)/2 {
		t.Fatalf("took %s: the replica waited for its back-off", took)
	}
}

func postHook(t *testing.T, api string, header map[string]string, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+api+"/hooks/git", strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A signed webhook call makes an agent that polls once an hour fetch at
// once; a badly signed one is refused and counted.
func TestWebhookTriggersFetch(t *testing.T) {
	e := newEnv(t)
	d := testenv.GitDaemon(t, filepath.Dir(strings.TrimPrefix(e.url, "file://")))
	e.work.WriteFile("apps/web.yaml", deployment("web", 1, "sleep 1000"))
	e.work.Commit("web: 1")
	e.work.Push()
	secretFile := filepath.Join(t.TempDir(), "hook-secret")
	const secret = "hook-s3cr3t-planted"
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := e.opts(t, "node-1")
	o.repo = d.URL + "/" + filepath.Base(e.url)
	o.poll = "1h"
	o.extra = []string{"--webhook-secret-file", secretFile}
	ag := startAgent(t, o)
	waitFor(t, "1 running replica", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		return running(ts) == 1, fmt.Sprintf("%+v", ts)
	})

	e.work.WriteFile("apps/web.yaml", deployment("web", 2, "sleep 1000"))
	c2 := e.work.Commit("web: 2")
	e.work.Push()
	body := `{"ref":"refs/heads/main","after":"` + c2 + `"}`
	mac := hmac.New(sha256.New, []byte("not the secret"))
	mac.Write([]byte(body))
	if code := postHook(t, ag.api, map[string]string{"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil))}, body); code != 401 {
		t.Fatalf("bad signature: %d", code)
	}
	time.Sleep(1500 * time.Millisecond)
	if s, _ := ag.status(); s.DesiredCommit == c2 {
		t.Fatal("a refused webhook call was acted on")
	}

	mac = hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	start := time.Now()
	if code := postHook(t, ag.api, map[string]string{"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil)), "X-GitHub-Event": "push"}, body); code != 202 {
		t.Fatalf("good signature: %d", code)
	}
	waitFor(t, "2 running replicas after the webhook", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		return running(ts) == 2, fmt.Sprintf("%+v", ts)
	})
	t.Logf("push to 2 running replicas after the webhook: %s", time.Since(start))
	v, err := ag.source()
	if err != nil || v.Webhook.Accepted != 1 || v.Webhook.Invalid != 1 {
		t.Fatalf("webhook counters: %+v %v", v, err)
	}
	ag.kill()
	if strings.Contains(ag.logs.String(), secret) {
		t.Fatal("the webhook secret reached the log")
	}
}
