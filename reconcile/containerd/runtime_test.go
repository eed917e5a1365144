package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"golang.org/x/sys/unix"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
)

func newRuntime(t testing.TB) (*Runtime, *testenv.Containerd) {
	t.Helper()
	cd := testenv.StartContainerd(t)
	images := filepath.Dir(testenv.BusyboxArchive(t))
	rt, err := New(context.Background(), Config{Address: cd.Address, Namespace: testNS, ImagesDir: images, LogWriter: logWriter(t),
		Pause: []string{pauseBinary(t), "pause"}, PauseRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, cd
}

func labels(id string) map[string]string {
	return map[string]string{
		reconcile.LabelWorkload: "w", reconcile.LabelKind: "Deployment", reconcile.LabelReplica: "0",
		reconcile.LabelContainer: id, reconcile.LabelSpecHash: "h", reconcile.LabelNamespace: "default",
	}
}

func spec(t testing.TB, id string, cmd ...string) reconcile.ContainerSpec {
	l := labels(id)
	logPath := filepath.Join(t.TempDir(), id+".log")
	l[reconcile.LabelLogPath] = logPath
	return reconcile.ContainerSpec{ID: id, Labels: l, Image: "busybox:latest", PullPolicy: "IfNotPresent", Command: cmd, LogPath: logPath}
}

func state(t testing.TB, rt *Runtime, id string) reconcile.Container {
	t.Helper()
	cs, err := rt.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	return reconcile.Container{State: "absent"}
}

func waitState(t testing.TB, rt *Runtime, id string, want reconcile.State) reconcile.Container {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := state(t, rt, id)
		if c.State == want {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s, want %s", id, c.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func run(t testing.TB, rt *Runtime, s reconcile.ContainerSpec) {
	t.Helper()
	ctx := context.Background()
	if err := rt.EnsureImage(ctx, s.Image, s.PullPolicy); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := rt.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("create+start %s: %s", s.ID, time.Since(start))
}

func TestLifecycle(t *testing.T) {
	rt, cd := newRuntime(t)
	ctx := context.Background()

	// A foreign container in the same namespace, same-looking name, no labels.
	cl := cd.Client(t)
	nctx := namespaces.WithNamespace(ctx, testNS)
	img, err := cl.GetImage(nctx, "docker.io/library/busybox:latest")
	if err != nil {
		if err := rt.EnsureImage(ctx, "busybox", "IfNotPresent"); err != nil {
			t.Fatal(err)
		}
		img, _ = cl.GetImage(nctx, "docker.io/library/busybox:latest")
	}
	if _, err := cl.NewContainer(nctx, "w-0-main-foreign", containerd.WithNewSnapshot("foreign", img),
		containerd.WithNewSpec(oci.WithImageConfig(img))); err != nil {
		t.Fatal(err)
	}

	s := spec(t, "main", "sh", "-c", "echo hello $GREETING; sleep 1000")
	s.Env = []string{"GREETING=world"}
	s.MemoryLimitBytes = 64 << 20
	s.CPUMilli = 250
	run(t, rt, s)
	c := waitState(t, rt, "main", reconcile.StateRunning)
	if c.Labels[reconcile.LabelWorkload] != "w" {
		t.Fatalf("labels: %v", c.Labels)
	}
	waitLog(t, s.LogPath, "hello world")

	// Limits reached the cgroup (v1 layout on this machine; v2 checked too).
	task, err := cl.LoadContainer(nctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := task.Task(nctx, nil)
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", tk.Pid()))
	if !checkMemoryLimit(t, string(cg), 64<<20) {
		t.Fatalf("memory limit not found in cgroup of pid %d:\n%s", tk.Pid(), cg)
	}

	// Stop: sh ignores SIGTERM as PID 1, so the grace period is waited out.
	start := time.Now()
	if err := rt.Stop(ctx, "main", time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Fatalf("stop took %s, want about the 1s grace", d)
	}
	if c := waitState(t, rt, "main", reconcile.StateExited); c.ExitCode != 137 {
		t.Fatalf("exit code after SIGKILL = %d", c.ExitCode)
	}
	// A restart keeps the last run's log as the previous one.
	if err := rt.Start(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	waitState(t, rt, "main", reconcile.StateRunning)
	waitLog(t, s.LogPath, "hello world")
	waitLog(t, containerlog.PreviousPath(s.LogPath), "hello world")

	// Exit codes.
	e := spec(t, "exit3", "sh", "-c", "exit 3")
	run(t, rt, e)
	if c := waitState(t, rt, "exit3", reconcile.StateExited); c.ExitCode != 3 || c.FinishedAt.IsZero() {
		t.Fatalf("exit3: %+v", c)
	}

	// Remove cleans container and snapshot; the foreign one is untouched.
	for _, id := range []string{"main", "exit3"} {
		if err := rt.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := rt.Remove(ctx, id); err != nil {
			t.Fatalf("second remove: %v", err)
		}
	}
	cs, _ := rt.List(ctx)
	if len(cs) != 0 {
		t.Fatalf("left over: %+v", cs)
	}
	if _, err := cl.LoadContainer(nctx, "w-0-main-foreign"); err != nil {
		t.Fatalf("foreign container gone: %v", err)
	}
	if _, err := cl.SnapshotService("overlayfs").Stat(nctx, "main"); err == nil {
		t.Fatal("snapshot of removed container left behind")
	}
}

func checkMemoryLimit(t testing.TB, cgroupFile string, want int64) bool {
	for _, line := range strings.Split(cgroupFile, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var p string
		switch {
		case f[1] == "" && f[0] == "0": // v2
			p = filepath.Join("/sys/fs/cgroup", f[2], "memory.max")
		case strings.Contains(f[1], "memory"):
			p = filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes")
		default:
			continue
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == fmt.Sprint(want) {
			return true
		}
	}
	return false
}

func waitLog(t testing.TB, path, want string) { waitLogCount(t, path, want, 1) }

func waitLogCount(t testing.TB, path, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), want) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: want %d x %q, have:\n%s", path, n, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCommandArgsAndNetwork(t *testing.T) {
	rt, _ := newRuntime(t)
	// Args alone keep the image's entrypoint (none for busybox: args run).
	a := spec(t, "args")
	a.Args = []string{"sh", "-c", "echo args-only"}
	run(t, rt, a)
	waitLog(t, a.LogPath, "args-only")
	// Own network namespace: only loopback. Host network: the host's.
	own := spec(t, "ownnet", "sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net")
	own.Hostname = "replica-0"
	run(t, rt, own)
	host := spec(t, "hostnet", "sh", "-c", "readlink /proc/self/ns/net")
	host.HostNetwork = true
	run(t, rt, host)
	self, _ := os.Readlink("/proc/self/ns/net")
	waitLog(t, host.LogPath, self)
	waitLog(t, own.LogPath, "lo")
	if b, _ := os.ReadFile(own.LogPath); strings.Contains(string(b), self) {
		t.Fatalf("container without hostNetwork shares the host's netns:\n%s", b)
	}
}

func TestImages(t *testing.T) {
	rt, _ := newRuntime(t)
	ctx := context.Background()
	for _, pol := range []string{"IfNotPresent", "Always", "Never"} {
		if err := rt.EnsureImage(ctx, "busybox", pol); err != nil {
			t.Fatalf("busybox with %s: %v", pol, err)
		}
	}
	for _, pol := range []string{"IfNotPresent", "Always", "Never"} {
		err := rt.EnsureImage(ctx, "127.0.0.1:1/nothing/here:1.0", pol)
		if !errors.Is(err, reconcile.ErrImageNotFound) {
			t.Fatalf("missing image with %s: %v", pol, err)
		}
	}
}

// containerd restarts: running containers stay running and are listed
// again; exits are streamed across the restart.
func TestContainerdRestartAndExits(t *testing.T) {
	rt, cd := newRuntime(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exits, err := rt.Exits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := spec(t, "survivor", "sh", "-c", "sleep 1000")
	run(t, rt, s)
	waitState(t, rt, "survivor", reconcile.StateRunning)
	cd.Restart(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		cs, err := rt.List(context.Background())
		if err == nil && len(cs) == 1 && cs[0].State == reconcile.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after containerd restart: %+v %v", cs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The stream is re-subscribed in the background, with no signal of
	// when: a container that exits before that is only seen by the next
	// pass (level-triggered). Exit events must flow again soon after.
	deadline = time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		q := spec(t, fmt.Sprintf("quick%d", i), "sh", "-c", "exit 0")
		run(t, rt, q)
		select {
		case id := <-exits:
			if !strings.HasPrefix(id, "quick") {
				t.Fatalf("exit of %q", id)
			}
			return
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatal("no exit event after containerd restart")
		}
	}
}

func TestParallelStart20(t *testing.T) {
	rt, _ := newRuntime(t)
	var wg sync.WaitGroup
	start := time.Now()
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := spec(t, fmt.Sprintf("p%d", i), "sleep", "1000")
			if err := rt.EnsureImage(context.Background(), s.Image, s.PullPolicy); err != nil {
				errs <- err
				return
			}
			if err := rt.Create(context.Background(), s); err != nil {
				errs <- err
				return
			}
			if err := rt.Start(context.Background(), s.ID); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("20 containers created and started in parallel: %s", time.Since(start))
	cs, _ := rt.List(context.Background())
	running := 0
	for _, c := range cs {
		if c.State == reconcile.StateRunning {
			running++
		}
	}
	if running != 20 {
		t.Fatalf("running = %d", running)
	}
}

// testNS is unique per test process: runc keeps container state under
// /run/containerd/runc/<namespace>/<id> whatever containerd's own state
// dir is, so two daemons on one machine must not share namespace and ids.
var testNS = testenv.Namespace("driftless")

// hostPID and hostIPC share the host's namespaces (and only then); a
// HostToContainer mount sees what the host mounts below it after the
// container started.
func TestHostNamespacesAndPropagation(t *testing.T) {
	rt, _ := newRuntime(t)
	selfPID, _ := os.Readlink("/proc/self/ns/pid")
	selfIPC, _ := os.Readlink("/proc/self/ns/ipc")
	host := spec(t, "hostns", "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; sleep 30")
	host.HostPID, host.HostIPC = true, true
	run(t, rt, host)
	own := spec(t, "ownns", "sh", "-c", "readlink /proc/self/ns/pid; echo done; sleep 30")
	run(t, rt, own)
	waitLog(t, host.LogPath, selfPID)
	waitLog(t, host.LogPath, selfIPC)
	waitLog(t, own.LogPath, "done")
	if b, _ := os.ReadFile(own.LogPath); strings.Contains(string(b), selfPID) {
		t.Fatalf("a container without hostPID shares the host's PID namespace:\n%s", b)
	}

	dir := t.TempDir()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "later"), 0o755)
	for _, tc := range []struct{ id, prop, want string }{{"slave", "rslave", "seen"}, {"private", "", "unseen"}} {
		s := spec(t, tc.id, "sh", "-c", "while [ ! -f /host/go ]; do sleep 0.1; done; if [ -f /host/later/marker ]; then echo seen; else echo unseen; fi")
		s.Mounts = []reconcile.Mount{{Source: dir, Destination: "/host", Propagation: tc.prop}}
		run(t, rt, s)
		defer func(s reconcile.ContainerSpec, want string) { waitLog(t, s.LogPath, want) }(s, tc.want)
	}
	time.Sleep(500 * time.Millisecond)
	// The host mounts a tmpfs below the shared directory, writes into it,
	// then tells the containers to look.
	later := filepath.Join(dir, "later")
	if err := unix.Mount("tmpfs", later, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(later, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(later, "marker"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
}
