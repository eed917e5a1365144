package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The verbs that go to a node's peer listener, from the CLI on another
// machine (the test's namespace) to a host of the LAN: reconcile now, the
// node's containers against its desired replicas, a replica's logs; a
// wrong token is refused.
func TestPeerVerbs(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, "echo hello from the peer; "+trapSleep))
	e.work.WriteFile("ghost.yaml", strings.Replace(deployment("ghost", 1, trapSleep), "image: busybox:latest\n          imagePullPolicy: IfNotPresent", "image: nosuch.invalid/ghost:1\n          imagePullPolicy: Never", 1))
	e.work.Commit("web and a replica whose image is nowhere")
	e.work.Push()
	key := writeKey(t, "0123456789abcdef0123456789abcdef")
	_, hosts := startHosts(t, e, 1, "--gossip-key-file", key)
	h := hosts[0]
	waitFor(t, "web running on the host", 90*time.Second, func() (bool, string) {
		return running(listTasksIn(t, h.client, ns, "web")) == 1, ""
	})
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		out, err := exec.Command(e.bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("driftless %v: exit %d, want %d\n%s", args, code, wantCode, out)
		}
		return string(out)
	}
	peerArgs := []string{"--repo", e.url, "--gossip-key-file", key}

	out := cli(0, append([]string{"reconcile"}, peerArgs...)...)
	if !strings.Contains(out, h.Name) || !strings.Contains(out, "reconciled") {
		t.Fatalf("reconcile:\n%s", out)
	}
	out = cli(3, append([]string{"diff"}, peerArgs...)...)
	if !strings.Contains(out, "missing") || !strings.Contains(out, "default/Deployment/ghost") || strings.Contains(out, "Deployment/web") {
		t.Fatalf("diff:\n%s", out)
	}
	waitFor(t, "the log through the peer listener", 30*time.Second, func() (bool, string) {
		out, _ := exec.Command(e.bin, append([]string{"logs", "deploy/web", "--node", h.Name}, peerArgs...)...).CombinedOutput()
		return strings.Contains(string(out), "hello from the peer"), string(out)
	})
	wrong := writeKey(t, "fedcba9876543210fedcba9876543210")
	out = cli(1, "reconcile", "--repo", e.url, "--gossip-key-file", wrong)
	if !strings.Contains(out, "401") {
		t.Fatalf("a wrong key: %s", out)
	}
}
