package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dashboardTools finds node, the test's playwright-core and Chromium:
// missing ones fail under CI (which installs them), skip elsewhere.
func dashboardTools(t *testing.T) (node, dir, chromium string) {
	t.Helper()
	dir, _ = filepath.Abs("dashboard")
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node"
	case !exists(filepath.Join(dir, "node_modules", "playwright-core")):
		missing = "playwright-core (npm install --prefix test/e2e/dashboard)"
	}
	chromium = "/usr/bin/chromium"
	if missing == "" && !exists(chromium) {
		missing = "chromium (Debian's chromium package)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found", missing)
		}
		t.Skipf("%s not found", missing)
	}
	return node, dir, chromium
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// The dashboard in a real browser: nodes, workloads and replicas shown,
// a pushed change appears without a reload, a broken push shows the
// rejection with its file and line, a replica's log streams.
func TestDashboardInBrowser(t *testing.T) {
	node, dir, chromium := dashboardTools(t)
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, "echo hello from web; "+trapSleep))
	e.work.Commit("web")
	e.work.Push()
	ag := startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "web running", 60*time.Second, func() (bool, string) { return running(listTasks(t, e.client, "web")) == 1, "" })

	cmd := exec.Command(node, filepath.Join(dir, "check.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DASHBOARD_URL=http://"+ag.api+"/", "CHROMIUM="+chromium, "SCREENSHOT="+os.Getenv("DASHBOARD_SCREENSHOT"))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	step := func(name string) string {
		t.Helper()
		deadline := time.After(120 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("browser script ended before step %s:\n%s", name, stderr.String())
				}
				if strings.HasPrefix(l, "STEP "+name+" ok") || l == name {
					t.Log(l)
					return l
				}
				t.Log(l)
			case <-deadline:
				t.Fatalf("step %s timed out:\n%s", name, stderr.String())
			}
		}
	}
	step("first")
	e.work.WriteFile("web.yaml", deployment("web", 2, "echo hello from web; "+trapSleep))
	e.work.Commit("web: 2 replicas")
	e.work.Push()
	_, _ = io.WriteString(stdin, "next\n")
	step("scaled")
	e.work.WriteFile("broken.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec:\n  replicas: -1\n")
	e.work.Commit("broken")
	e.work.Push()
	_, _ = io.WriteString(stdin, "next\n")
	if l := step("rejected"); !strings.Contains(l, "broken.yaml:5") {
		t.Fatalf("the rejection does not name the file and line: %s", l)
	}
	step("logs")
	step("DONE")
	fmt.Fprint(io.Discard)
}
