package containerd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
)

var (
	pauseOnce sync.Once
	pausePath string
	pauseErr  error
)

// pauseBinary builds the pause process alone, statically linked (the test
// binary itself may need a dynamic loader, as with -race).
func pauseBinary(t testing.TB) string {
	t.Helper()
	pauseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dl-pause-")
		if err != nil {
			pauseErr = err
			return
		}
		pausePath = filepath.Join(dir, "pause")
		cmd := exec.Command("go", "build", "-o", pausePath, "driftless.dev/driftless/internal/pause/testdata/pause")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pauseErr = err
			t.Logf("%s", out)
		}
	})
	if pauseErr != nil {
		t.Fatalf("build the pause binary: %v", pauseErr)
	}
	return pausePath
}

// holderOf returns the holder container of the replica's process
// namespace, or "" when there is none.
func holderOf(t *testing.T, rt *Runtime) (id string, pid uint32) {
	t.Helper()
	ctx := rt.ctx(context.Background())
	cs, err := rt.client.ContainerService().List(ctx, `labels."`+LabelPIDNSHolder+`"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) == 0 {
		return "", 0
	}
	if len(cs) > 1 {
		t.Fatalf("%d holders, want one", len(cs))
	}
	c, err := rt.client.LoadContainer(ctx, cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := c.Task(ctx, nil); err == nil {
		pid = task.Pid()
	}
	return cs[0].ID, pid
}

// A replica with shareProcessNamespace: its containers see each other's
// processes, PID 1 is the pause process, a container that restarts does
// not take the others with it, a killed holder is replaced and the
// containers rejoin the new one, and the holder goes with the replica.
func TestSharedProcessNamespace(t *testing.T) {
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	rec := newReconciler(t, rt, dataDir)

	share := true
	d := pod("shared",
		bb("app", "sleep 2; echo app-run"),
		bb("watch", "while :; do if ps | grep -q '[s]leep 2'; then echo sees-app; fi; ps -o pid,args | grep '^ *1 '; sleep 0.5; done"),
	)
	d.Pod.ShareProcessNamespace = &share
	lone := pod("lone", bb("main", "ps -o pid,args | grep '^ *1 '; sleep 1000"))
	desired := []reconcile.DesiredReplica{d, lone}
	syncUntil(t, rec, desired, 30*time.Second, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })

	waitFor(t, "the watcher sees the app's process and the pause process as PID 1", 20*time.Second, func() bool {
		l := logOf(dataDir, d, "watch")
		return strings.Contains(l, "sees-app") && strings.Contains(l, pauseMount)
	})
	waitFor(t, "a replica without it has its own PID 1", 10*time.Second, func() bool {
		return strings.Contains(logOf(dataDir, lone, "main"), "sleep 1000")
	})
	holder, pid := holderOf(t, rt)
	if holder == "" || pid == 0 {
		t.Fatalf("no running holder (%q, pid %d)", holder, pid)
	}

	// The app exits every two seconds and is restarted; the watcher,
	// in the same PID namespace, keeps running.
	watchStarts := func() int { return strings.Count(logOf(dataDir, d, "watch"), "sees-app") }
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(logOf(dataDir, d, "app"), "app-run") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the app did not run twice: %q", logOf(dataDir, d, "app"))
		}
		if _, err := rec.Sync(context.Background(), desired); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cs, err := rt.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Labels[reconcile.LabelWorkload] == "shared" && c.Labels[reconcile.LabelContainer] == "watch" && c.Labels[reconcile.LabelRestarts] != "0" {
			t.Fatalf("the watcher restarted with the app: %v", c.Labels)
		}
	}
	if watchStarts() == 0 {
		t.Fatal("the watcher never saw the app")
	}

	// A killed holder takes the namespace's processes with it; the next
	// passes start a new holder and both containers again in it.
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new holder with both containers in it", 60*time.Second, func() bool {
		if _, err := rec.Sync(context.Background(), desired); err != nil {
			t.Fatal(err)
		}
		_, p := holderOf(t, rt)
		if p == 0 || p == pid {
			return false
		}
		ns, err := os.Readlink(pidNSPath(p))
		if err != nil {
			return false
		}
		cs, _ := rt.List(context.Background())
		joined := 0
		for _, c := range cs {
			if c.Labels[reconcile.LabelWorkload] != "shared" || c.State != reconcile.StateRunning {
				continue
			}
			cc, err := rt.client.LoadContainer(rt.ctx(context.Background()), c.ID)
			if err != nil {
				continue
			}
			task, err := cc.Task(rt.ctx(context.Background()), nil)
			if err != nil {
				continue
			}
			if got, _ := os.Readlink(pidNSPath(task.Pid())); got == ns {
				joined++
			}
		}
		return joined == 2
	})

	// The replica goes, and its holder with it.
	syncUntil(t, rec, []reconcile.DesiredReplica{lone}, 30*time.Second, "shared replica removed", func(manifest.ReplicaStatus) bool {
		id, _ := holderOf(t, rt)
		return id == ""
	})
}
