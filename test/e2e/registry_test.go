package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

// The agent binary pulls an image of an unreachable registry through the
// mirror and credential files of --registry-config; the password never
// reaches its log.
func TestRegistryConfigAgent(t *testing.T) {
	e := newEnv(t)
	reg := testenv.StartRegistry(t, "puller", "agent-s3cret")
	reg.Push(t, testenv.BusyboxArchive(t), "library/busybox:1.0")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "user"), []byte("puller\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pass"), []byte("agent-s3cret\n"), 0o600)
	cfg := filepath.Join(dir, "registries.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`mirrors:
  example.test: ["http://%[1]s"]
credentials:
  %[1]q: {usernameFile: %[2]s, passwordFile: %[3]s}
insecure: [%[1]q]
`, reg.Host, filepath.Join(dir, "user"), filepath.Join(dir, "pass"))), 0o644)

	m := strings.Replace(deployment("web", 1, "sleep 1000"), "image: busybox:latest", "image: example.test/library/busybox:1.0", 1)
	e.work.WriteFile("apps/web.yaml", m)
	e.work.Commit("web from the registry")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.images = t.TempDir() // nothing to import: the image must be pulled
	o.extra = []string{"--registry-config", cfg}
	ag := startAgent(t, o)
	waitFor(t, "1 running replica pulled through the mirror", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "web")
		return running(ts) == 1, fmt.Sprintf("%+v", ts)
	})
	ag.kill()
	logs := ag.logs.String()
	if !strings.Contains(logs, "image pulled") || !strings.Contains(logs, "from="+reg.Host) {
		t.Fatalf("the pull and its mirror are not logged:\n%s", tail(logs, 40))
	}
	if strings.Contains(logs, "agent-s3cret") {
		t.Fatal("the registry password is in the agent log")
	}
}
