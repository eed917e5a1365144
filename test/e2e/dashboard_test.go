package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dashboardTools finds node, the test's playwright-core and Chromium:
// missing ones fail under CI (which installs them), skip elsewhere.
func dashboardTools(t testing.TB) (node, dir, chromium string) {
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
// a pushed change appears without a reload, the history joins each
// desired commit with what the status branch says of it, a broken push
// shows the rejection with its file and line, a replica's log streams.
func TestDashboardInBrowser(t *testing.T) {
	d := startDashboard(t, 1, "")
	d.step("first")
	d.scale()
	d.step("scaled")
	d.e.work.WriteFile("broken.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec:\n  replicas: -1\n")
	d.e.work.Commit("broken")
	d.e.work.Push()
	_, _ = io.WriteString(d.stdin, "next\n")
	if l := d.step("rejected"); !strings.Contains(l, "broken.yaml:5") {
		t.Fatalf("the rejection does not name the file and line: %s", l)
	}
	d.step("logs")
	d.step("DONE")
}

// BenchmarkDashboard reports the dashboard's first render (the page's own
// mark, from navigation start, the median of 5 loads), its first
// contentful paint, and the time from a push until the browser shows
// its result without a reload.
func BenchmarkDashboard(b *testing.B) {
	for i := 0; i < b.N; i++ {
		d := startDashboard(b, 5, "first,scaled")
		first := d.step("first")
		d.scale()
		scaled := d.step("scaled")
		d.step("DONE")
		b.ReportMetric(metricOf(b, first, "render="), "first-render-ms")
		b.ReportMetric(metricOf(b, first, "fcp="), "fcp-ms")
		b.ReportMetric(metricOf(b, scaled, "update="), "push-to-shown-ms")
	}
}

func metricOf(tb testing.TB, line, key string) float64 {
	tb.Helper()
	_, rest, ok := strings.Cut(line, key)
	if !ok {
		tb.Fatalf("no %s in %q", key, line)
	}
	v, _, _ := strings.Cut(rest, "ms")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		tb.Fatalf("%s in %q: %v", key, line, err)
	}
	return f
}

// dashboardRun is an agent with web running and the browser script
// driving its dashboard.
type dashboardRun struct {
	tb     testing.TB
	e      *env
	stdin  io.Writer
	lines  chan string
	stderr *syncBuffer
}

func startDashboard(tb testing.TB, loads int, only string) *dashboardRun {
	tb.Helper()
	node, dir, chromium := dashboardTools(tb)
	e := newEnv(tb)
	e.work.WriteFile("web.yaml", deployment("web", 1, "echo hello from web; "+trapSleep))
	e.work.Commit("web")
	e.work.Push()
	ag := startAgent(tb, e.opts(tb, "node-1"))
	waitFor(tb, "web running", 60*time.Second, func() (bool, string) { return running(listTasks(tb, e.client, "web")) == 1, "" })

	cmd := exec.Command(node, filepath.Join(dir, "check.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DASHBOARD_URL=http://"+ag.api+"/", "CHROMIUM="+chromium,
		"SCREENSHOT="+os.Getenv("DASHBOARD_SCREENSHOT"), fmt.Sprintf("LOADS=%d", loads), "ONLY="+only)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	d := &dashboardRun{tb: tb, e: e, stdin: stdin, lines: make(chan string, 16), stderr: &syncBuffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	return d
}

// scale pushes web with 2 replicas and tells the script.
func (d *dashboardRun) scale() {
	d.e.work.WriteFile("web.yaml", deployment("web", 2, "echo hello from web; "+trapSleep))
	d.e.work.Commit("web: 2 replicas")
	d.e.work.Push()
	_, _ = io.WriteString(d.stdin, "next\n")
}

// step waits for the script's line of step name and returns it.
func (d *dashboardRun) step(name string) string {
	d.tb.Helper()
	deadline := time.After(120 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				d.tb.Fatalf("browser script ended before step %s:\n%s", name, d.stderr.String())
			}
			d.tb.Log(l)
			if strings.HasPrefix(l, "STEP "+name+" ok") || l == name {
				return l
			}
		case <-deadline:
			d.tb.Fatalf("step %s timed out:\n%s", name, d.stderr.String())
		}
	}
}
