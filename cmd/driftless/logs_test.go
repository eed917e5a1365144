package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
	ctrd "driftless.dev/driftless/reconcile/containerd"
)

// TestMain makes this test binary answer the shim's log writer
// invocations through run, as the driftless binary does.
func TestMain(m *testing.M) {
	if containerlog.IsWriterInvocation(os.Args[1:]) {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// lockedBuffer is written by a following logs command while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testenv.Until(t, what, 15*time.Second, ok)
}

// driftless logs reads what the shim's log writer wrote for containers on
// real containerd: choice of replica and container, --tail, --timestamps,
// --previous after a restart, and -f seeing new lines.
func TestLogsCommand(t *testing.T) {
	cd := testenv.StartContainerd(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := ctrd.New(context.Background(), ctrd.Config{Address: cd.Address, Namespace: testenv.Namespace("logs"),
		ImagesDir: filepath.Dir(testenv.BusyboxArchive(t)), LogWriter: exe})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := context.Background()
	if err := rt.EnsureImage(ctx, "busybox:latest", "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	start := func(container string, cmd string) string {
		t.Helper()
		id := "web-0-" + container
		p := filepath.Join(data, "logs", "default", "deployment", "web", "0", container+".log")
		l := map[string]string{
			reconcile.LabelWorkload: "web", reconcile.LabelKind: "Deployment", reconcile.LabelReplica: "0",
			reconcile.LabelContainer: container, reconcile.LabelSpecHash: "h", reconcile.LabelNamespace: "default",
			reconcile.LabelLogPath: p,
		}
		s := reconcile.ContainerSpec{ID: id, Labels: l, Image: "busybox:latest", PullPolicy: "IfNotPresent",
			Command: []string{"sh", "-c", cmd}, LogPath: p}
		if err := rt.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Remove(context.Background(), id) })
		return id
	}
	app := start("app", `echo oops >&2; usleep 300000; i=1; while [ $i -le 20 ]; do echo "line $i"; i=$((i+1)); done; sleep 1000`)
	start("sidecar", `i=0; while true; do echo "side $i"; i=$((i+1)); usleep 100000; done`)
	logs := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := logsCommand(ctx, append(args, "--data-dir", data), &out, &errb)
		return code, out.String(), errb.String()
	}
	waitUntil(t, "the app's output", func() bool {
		_, out, _ := logs("web", "-c", "app", "--tail", "1")
		return out == "line 20\n"
	})

	if code, _, errs := logs("web"); code != 1 || !strings.Contains(errs, "a container name must be specified for default/deployment/web replica 0, choose one of: [app sidecar]") {
		t.Fatalf("no -c: exit %d, %q", code, errs)
	}
	if code, _, errs := logs("nope"); code != 1 || !strings.Contains(errs, "workload default/nope has no logs on this node") || !strings.Contains(errs, "with logs here: deployment/web") {
		t.Fatalf("unknown workload: exit %d, %q", code, errs)
	}
	if code, _, errs := logs("web", "--replica", "3", "-c", "app"); code != 1 || !strings.Contains(errs, "no replica 3 on this node; replicas here: 0") {
		t.Fatalf("unknown replica: exit %d, %q", code, errs)
	}
	if code, _, errs := logs("web", "-c", "db"); code != 1 || !strings.Contains(errs, `container "db" not found in default/deployment/web replica 0; containers: [app sidecar]`) {
		t.Fatalf("unknown container: exit %d, %q", code, errs)
	}
	if code, _, errs := logs("web", "-c", "app", "--previous"); code != 1 || !strings.Contains(errs, "no previous run") {
		t.Fatalf("no previous run: exit %d, %q", code, errs)
	}

	code, out, errs := logs("default/web", "-c", "app")
	want := "oops\n"
	for i := 1; i <= 20; i++ {
		want += "line " + itoa(i) + "\n"
	}
	if code != 0 || out != want {
		t.Fatalf("whole log: exit %d %q, got:\n%s\nwant:\n%s", code, errs, out, want)
	}
	if _, out, _ := logs("web", "-c", "app", "--tail", "3"); out != "line 18\nline 19\nline 20\n" {
		t.Fatalf("--tail 3:\n%s", out)
	}
	_, out, _ = logs("-n", "default", "--timestamps", "web", "-c", "app", "--tail", "2")
	if !regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z line (19|20)\n){2}$`).MatchString(out) {
		t.Fatalf("--timestamps:\n%s", out)
	}

	// -f prints the tail, then lines as they come.
	fctx, cancel := context.WithCancel(ctx)
	var fout, ferr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- logsCommand(fctx, []string{"web", "-c", "sidecar", "-f", "--tail", "1", "--data-dir", data}, &fout, &ferr)
	}()
	waitUntil(t, "followed lines", func() bool { return strings.Count(fout.String(), "\n") >= 5 })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("-f: exit %d, %s", code, ferr.String())
	}
	lines := strings.Split(strings.TrimSpace(fout.String()), "\n")
	var first int
	for i, l := range lines {
		if !strings.HasPrefix(l, "side ") {
			t.Fatalf("-f line %q", l)
		}
		n := atoi(t, strings.TrimPrefix(l, "side "))
		if i == 0 {
			first = n
		} else if n != first+i {
			t.Fatalf("-f: %q after side %d", l, first+i-1)
		}
	}

	// A new run: --previous shows the last one.
	if err := rt.Stop(ctx, app, 0); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new run", func() bool {
		_, out, _ := logs("web", "-c", "app")
		return out == want
	})
	if _, out, _ := logs("web", "-c", "app", "--previous", "--tail", "1"); out != "line 20\n" {
		t.Fatalf("--previous --tail 1: %q", out)
	}
	b, _ := os.ReadFile(containerlog.PreviousPath(filepath.Join(data, "logs", "default", "deployment", "web", "0", "app.log")))
	if strings.Count(string(b), "line 20") != 1 {
		t.Fatalf("previous log:\n%s", b)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
