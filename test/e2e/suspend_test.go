package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// suspend → push → nothing changes → resume → applied, each a commit by
// the CLI on the desired branch.
func TestSuspendAndResume(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, "echo v1; "+trapSleep))
	e.work.Commit("web v1")
	e.work.Push()
	startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "web v1 running", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		return len(ts) == 1 && ts[0].Status == "running" && strings.Contains(ts[0].Cmd, "echo v1"), ""
	})

	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(e.bin, args...)
		cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=Ops Person", "GIT_AUTHOR_EMAIL=ops@example.internal",
			"GIT_COMMITTER_NAME=Ops Person", "GIT_COMMITTER_EMAIL=ops@example.internal")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("driftless %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// A workload that does not exist: an error, nothing committed.
	bad := exec.Command(e.bin, "suspend", "nosuch", "--repo", e.url)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), `no workload "nosuch"`) || !strings.Contains(string(out), "nothing committed") {
		t.Fatalf("suspend of a missing workload: %v\n%s", err, out)
	}
	out := cli("suspend", "web", "--repo", e.url)
	if !strings.Contains(out, "suspend default/Deployment/web: commit") {
		t.Fatalf("suspend: %s", out)
	}
	e.work.Pull()
	subject := gitOut(t, e.work.Dir, "log", "-1", "--format=%s %an", "origin/main")
	if !strings.HasPrefix(subject, "suspend default/Deployment/web Ops Person") {
		t.Fatalf("suspend commit: %q", subject)
	}
	before := listTasks(t, e.client, "web")

	// A change while suspended: applied to nothing.
	b, err := os.ReadFile(filepath.Join(e.work.Dir, "web.yaml"))
	if err != nil || !strings.Contains(string(b), "driftless.dev/suspended") {
		t.Fatalf("web.yaml after suspend: %v\n%s", err, b)
	}
	e.work.WriteFile("web.yaml", strings.Replace(string(b), "echo v1", "echo v2", 1))
	e.work.Commit("web v2")
	e.work.Push()
	waitFor(t, "the suspension on the status branch", 30*time.Second, func() (bool, string) {
		p, _ := statusFile(t, e.work.Dir, "placements/default/Deployment.web.yaml")
		return p.Suspended, ""
	})
	if st := statusText(t, e.bin, e.url); !strings.Contains(st, "SUSPENDED") || !strings.Contains(st[strings.Index(st, "SUSPENDED"):], "default/Deployment/web") {
		t.Fatalf("driftless status does not show the suspension:\n%s", st)
	}
	time.Sleep(3 * time.Second) // several polls and passes
	assertUnchanged(t, before, listTasks(t, e.client, "web"))

	out = cli("resume", "default/web", "--repo", e.url)
	if !strings.Contains(out, "resume default/Deployment/web") {
		t.Fatalf("resume: %s", out)
	}
	waitFor(t, "web v2 running after resume", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		return len(ts) == 1 && ts[0].Status == "running" && strings.Contains(ts[0].Cmd, "echo v2"), ""
	})
	if out := cli("resume", "web", "--repo", e.url); !strings.Contains(out, "not suspended already; nothing committed") {
		t.Fatalf("resume twice: %s", out)
	}
}
