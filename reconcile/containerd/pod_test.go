package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
)

// Tests of the reconciler on real containerd: whole replicas (shared
// network namespace, probes, init containers, security, hooks).

func newReconciler(t *testing.T, rt *Runtime, dataDir string) *reconcile.Reconciler {
	t.Helper()
	rec, err := reconcile.New(reconcile.Config{Node: "n1", DataDir: dataDir, Runtime: rt, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	return rec
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(&strings.Builder{}, nil))
}

func bb(name string, script string) manifest.Container {
	return manifest.Container{Name: name, Image: "busybox:latest", ImagePullPolicy: "IfNotPresent", Command: []string{"sh", "-c", script}}
}

func pod(name string, containers ...manifest.Container) reconcile.DesiredReplica {
	grace := int64(1)
	return reconcile.DesiredReplica{
		Workload: manifest.Ref{Namespace: "default", Kind: "Deployment", Name: name},
		SpecHash: "h1",
		Pod:      manifest.PodSpec{Containers: containers, RestartPolicy: "Always", TerminationGracePeriodSeconds: &grace},
	}
}

// syncUntil runs passes until cond holds for the replica's status.
func syncUntil(t *testing.T, rec *reconcile.Reconciler, desired []reconcile.DesiredReplica, timeout time.Duration, what string, cond func(manifest.ReplicaStatus) bool) manifest.ReplicaStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st manifest.ReplicaStatus
	for {
		obs, err := rec.Sync(context.Background(), desired)
		if err != nil {
			t.Fatal(err)
		}
		if len(desired) > 0 {
			st = obs[desired[0].Key()]
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %s; last status %+v", what, timeout, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logOf is a container's output of its previous run (kept when it
// restarted) and its current one.
func logOf(dataDir string, d reconcile.DesiredReplica, container string) string {
	dir := filepath.Dir(containerlog.Path(dataDir, d.Workload.Namespace, d.Workload.Kind, d.Workload.Name, d.Index, container))
	prev, _ := os.ReadFile(filepath.Join(dir, container+".previous.log"))
	cur, _ := os.ReadFile(filepath.Join(dir, container+".log"))
	return string(prev) + string(cur)
}

func TestReplicaSharesNetworkNamespace(t *testing.T) {
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	rec := newReconciler(t, rt, dataDir)

	// A namespace left by an earlier agent for a replica that is gone.
	leaked := filepath.Join(dataDir, "netns", "default_deployment_gone_0")
	if err := reconcile.CreateNetNS(leaked); err != nil {
		t.Fatal(err)
	}

	d := pod("talk",
		// httpd, not `nc -l`: busybox nc closes on its stdin's EOF and
		// may drop what it was sent.
		bb("server", "mkdir -p /tmp/www && echo hello-over-localhost > /tmp/www/index.html && exec httpd -f -p 9000 -h /tmp/www"),
		bb("client", "until wget -q -O- http://127.0.0.1:9000/; do sleep 0.2; done; readlink /proc/self/ns/net; sleep 1000"),
	)
	host := pod("host", bb("main", "readlink /proc/self/ns/net; sleep 1000"))
	host.Pod.HostNetwork = true
	desired := []reconcile.DesiredReplica{d, host}
	syncUntil(t, rec, desired, 20*time.Second, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logOf(dataDir, d, "client"), "hello-over-localhost") {
		if time.Now().After(deadline) {
			t.Fatalf("client never reached the server over localhost; server log %q, client log %q", logOf(dataDir, d, "server"), logOf(dataDir, d, "client"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	nsPath := rec.NetNSPath(d.Workload, 0)
	if !reconcile.IsNetNS(nsPath) {
		t.Fatalf("%s is not a network namespace", nsPath)
	}
	if reconcile.IsNetNS(leaked) {
		t.Fatal("leaked namespace of a replica that is gone was not removed")
	}
	if _, err := os.Stat(leaked); !os.IsNotExist(err) {
		t.Fatalf("leaked namespace file left: %v", err)
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	waitLog(t, filepath.Join(dataDir, "logs", "default", "deployment", "host", "0", "main.log"), self)
	if _, err := os.Stat(rec.NetNSPath(host.Workload, 0)); !os.IsNotExist(err) {
		t.Fatalf("hostNetwork replica got a namespace: %v", err)
	}
	if strings.Contains(logOf(dataDir, d, "client"), self) {
		t.Fatalf("replica runs in the host network namespace %s: %s", self, logOf(dataDir, d, "client"))
	}

	// An agent restart adopts the namespace the containers are in.
	var before, after unixStat
	before.of(t, nsPath)
	rec2 := newReconciler(t, rt, dataDir)
	syncUntil(t, rec2, desired, 10*time.Second, "still running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	after.of(t, nsPath)
	if before != after {
		t.Fatalf("namespace replaced on restart: %v -> %v", before, after)
	}

	// Removing the replica removes its namespace.
	syncDone(t, rec2, nil)
	if _, err := os.Stat(nsPath); !os.IsNotExist(err) {
		t.Fatalf("namespace of a removed replica left behind: %v", err)
	}
}

type unixStat struct{ dev, ino uint64 }

func (s *unixStat) of(t *testing.T, p string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	s.dev, s.ino = uint64(st.Dev), st.Ino
}

// unmountAll unmounts what a failed test left under dir, so that its
// temp dir can be removed.
func unmountAll(dir string) {
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		_ = reconcile.RemoveNetNS(filepath.Join(dir, e.Name()))
	}
}

// syncDone runs a pass, waits for the work it handed to replica workers,
// and runs another pass to observe (and clean up after) it.
func syncDone(t testing.TB, rec *reconcile.Reconciler, desired []reconcile.DesiredReplica) map[reconcile.ReplicaKey]manifest.ReplicaStatus {
	t.Helper()
	if _, err := rec.Sync(context.Background(), desired); err != nil {
		t.Fatal(err)
	}
	if err := rec.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs, err := rec.Sync(context.Background(), desired)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

// statusOf runs one pass and returns the status of replica key.
func statusOf(t *testing.T, rec *reconcile.Reconciler, desired []reconcile.DesiredReplica, key reconcile.ReplicaKey) manifest.ReplicaStatus {
	t.Helper()
	obs, err := rec.Sync(context.Background(), desired)
	if err != nil {
		t.Fatal(err)
	}
	return obs[key]
}

func waitStatus(t *testing.T, rec *reconcile.Reconciler, desired []reconcile.DesiredReplica, key reconcile.ReplicaKey, timeout time.Duration, what string, cond func(manifest.ReplicaStatus) bool) manifest.ReplicaStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := statusOf(t, rec, desired, key)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %s; last status %+v", what, timeout, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func fastProbe(h manifest.ProbeHandler) *manifest.Probe {
	return &manifest.Probe{ProbeHandler: h, TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
}

func port(n int32) manifest.IntOrString { return manifest.IntOrString{IntVal: n} }

func TestReadinessProbes(t *testing.T) {
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	rec := newReconciler(t, rt, dataDir)

	// httpd comes up after 3 s; its readiness probe names the port.
	web := bb("web", "sleep 3; mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www")
	web.Ports = []manifest.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}}
	web.ReadinessProbe = fastProbe(manifest.ProbeHandler{HTTPGet: &manifest.HTTPGetAction{Path: "/index.html", Port: manifest.IntOrString{IsString: true, StrVal: "http"}, Scheme: "HTTP",
		HTTPHeaders: []manifest.HTTPHeader{{Name: "X-Probe", Value: "1"}}}})
	tcp := bb("tcp", "sleep 3; exec httpd -f -p 9090")
	tcp.ReadinessProbe = fastProbe(manifest.ProbeHandler{TCPSocket: &manifest.TCPSocketAction{Port: port(9090)}})
	d := pod("ready", web, tcp)
	// A replica whose probe targets a port nothing listens on, and whose
	// grpc probe is answered by a server started later in its namespace.
	svc := ""
	g := bb("g", "sleep 1000")
	g.ReadinessProbe = fastProbe(manifest.ProbeHandler{GRPC: &manifest.GRPCAction{Port: 50051, Service: &svc}})
	dg := pod("grpc", g)
	desired := []reconcile.DesiredReplica{d, dg}

	st := waitStatus(t, rec, desired, d.Key(), 20*time.Second, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	if st.Ready {
		t.Fatalf("ready before anything listens: %+v", st)
	}
	if st.Reason != "ContainersNotReady" {
		t.Fatalf("reason %q", st.Reason)
	}
	start := time.Now()
	waitStatus(t, rec, desired, d.Key(), 15*time.Second, "ready once httpd listens", func(s manifest.ReplicaStatus) bool { return s.Ready })
	t.Logf("ready %s after first seen running", time.Since(start).Round(100*time.Millisecond))

	// grpc: nothing listens, so not ready, and nothing crashes.
	time.Sleep(2 * time.Second)
	if st := statusOf(t, rec, desired, dg.Key()); st.Ready || st.Phase != manifest.PhaseRunning || st.Restarts != 0 {
		t.Fatalf("grpc replica with nothing listening: %+v", st)
	}
	health := startHealthServer(t, rec.NetNSPath(dg.Workload, 0), 50051)
	waitStatus(t, rec, desired, dg.Key(), 10*time.Second, "grpc ready", func(s manifest.ReplicaStatus) bool { return s.Ready })
	health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	waitStatus(t, rec, desired, dg.Key(), 10*time.Second, "grpc not ready after NOT_SERVING", func(s manifest.ReplicaStatus) bool { return !s.Ready })
}

// startHealthServer serves grpc.health.v1 on 127.0.0.1:port inside the
// network namespace at nsPath: the listening socket keeps the namespace.
func startHealthServer(t *testing.T, nsPath string, port int) *health.Server {
	t.Helper()
	var lis net.Listener
	if err := reconcile.InNetNS(nsPath, func() error {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		lis = l
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return h
}

func TestLivenessProbeRestarts(t *testing.T) {
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	rec := newReconciler(t, rt, dataDir)
	c := bb("app", "echo started; sleep 1000")
	c.LivenessProbe = fastProbe(manifest.ProbeHandler{Exec: &manifest.ExecAction{Command: []string{"test", "-e", "/tmp/healthy"}}})
	c.LivenessProbe.FailureThreshold = 2
	d := pod("live", c)
	desired := []reconcile.DesiredReplica{d}
	waitStatus(t, rec, desired, d.Key(), 20*time.Second, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	// Killed after two failures, restarted after the 10 s back-off.
	waitStatus(t, rec, desired, d.Key(), 30*time.Second, "restarted by liveness", func(s manifest.ReplicaStatus) bool {
		return s.Restarts >= 1 && s.Phase == manifest.PhaseRunning && s.Reason == ""
	})
	// The killed run's output is kept as the previous log; the new run
	// starts a fresh one.
	logDir := filepath.Join(dataDir, "logs", "default", "deployment", "live", "0")
	waitLog(t, filepath.Join(logDir, "app.previous.log"), "started")
	waitLog(t, filepath.Join(logDir, "app.log"), "started")
}

func i64(v int64) *int64 { return &v }
func yes() *bool         { b := true; return &b }

func TestInitContainersAndSidecar(t *testing.T) {
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	rec := newReconciler(t, rt, dataDir)
	mount := []manifest.VolumeMount{{Name: "work", MountPath: "/work"}}

	first := bb("prepare", "sleep 1; echo from-init > /work/msg")
	first.VolumeMounts = mount
	side := bb("side", "echo sidecar-up; exec httpd -f -p 7070")
	side.RestartPolicy = "Always"
	side.StartupProbe = fastProbe(manifest.ProbeHandler{TCPSocket: &manifest.TCPSocketAction{Port: port(7070)}})
	second := bb("check", "test -e /work/msg && nc -w 1 127.0.0.1 7070 </dev/null && echo second-init-ok")
	second.VolumeMounts = mount
	app := bb("app", "cat /work/msg; sleep 1000")
	app.VolumeMounts = mount
	d := pod("init", app)
	d.Pod.InitContainers = []manifest.Container{first, side, second}
	d.Pod.Volumes = []manifest.Volume{{Name: "work", EmptyDir: &manifest.EmptyDirVolumeSource{}}}

	// An init container that fails under restartPolicy Never fails the
	// replica; its app container never runs.
	bad := bb("fail", "exit 3")
	never := pod("never", bb("app", "echo must-not-run; sleep 1000"))
	never.Pod.RestartPolicy = "Never"
	never.Pod.InitContainers = []manifest.Container{bad}
	desired := []reconcile.DesiredReplica{d, never}

	st := statusOf(t, rec, desired, d.Key())
	if st.Phase != manifest.PhasePending || !strings.HasPrefix(st.Reason, "Init:0/3") {
		t.Fatalf("first pass: %+v", st)
	}
	waitStatus(t, rec, desired, d.Key(), 30*time.Second, "running after init", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning && s.Ready })
	waitLog(t, filepath.Join(dataDir, "logs", "default", "deployment", "init", "0", "app.log"), "from-init")
	if !strings.Contains(logOf(dataDir, d, "check"), "second-init-ok") {
		t.Fatalf("second init container did not see the first one's file and the sidecar: %q", logOf(dataDir, d, "check"))
	}
	// Completed init containers stay completed; the sidecar keeps running.
	for name, want := range map[string]reconcile.State{"prepare": reconcile.StateExited, "check": reconcile.StateExited, "side": reconcile.StateRunning, "app": reconcile.StateRunning} {
		c := state(t, rt, reconcile.ContainerID(d.Workload, 0, name, d.SpecHash))
		if c.State != want {
			t.Fatalf("%s: %s, want %s", name, c.State, want)
		}
	}
	// Nothing runs again once init is done. (An init container may have
	// been retried before, on a loaded machine: that is allowed.)
	before := statusOf(t, rec, desired, d.Key())
	time.Sleep(time.Second)
	if st := statusOf(t, rec, desired, d.Key()); st.Restarts != before.Restarts || !st.Ready {
		t.Fatalf("after init: %+v (before %+v)", st, before)
	}

	st = waitStatus(t, rec, desired, never.Key(), 10*time.Second, "failed init", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseFailed })
	if st.Reason != "Init:Error" {
		t.Fatalf("failed init: %+v", st)
	}
	if c := state(t, rt, reconcile.ContainerID(never.Workload, 0, "app", never.SpecHash)); c.State != "absent" {
		t.Fatalf("app container of a failed init: %+v", c)
	}
}

func TestSecurityContext(t *testing.T) {
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	rec := newReconciler(t, rt, dataDir)

	user := bb("user", "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); touch /tmp/x && echo rootfs-writable; sleep 1000")
	user.SecurityContext = &manifest.SecurityContext{RunAsGroup: i64(2000), ReadOnlyRootFilesystem: yes()}
	du := pod("user", user)
	du.Pod.SecurityContext = &manifest.PodSecurityContext{RunAsUser: i64(1000), FSGroup: i64(3000), RunAsNonRoot: yes()}

	caps := bb("caps", "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; sleep 1000")
	no := false
	caps.SecurityContext = &manifest.SecurityContext{Capabilities: &manifest.Capabilities{Drop: []string{"ALL"}, Add: []string{"NET_BIND_SERVICE"}},
		SeccompProfile: &manifest.SeccompProfile{Type: "RuntimeDefault"}, AllowPrivilegeEscalation: &no}
	dc := pod("caps", caps)

	root := bb("root", "sleep 1000")
	root.SecurityContext = &manifest.SecurityContext{RunAsNonRoot: yes()}
	dr := pod("root", root)
	desired := []reconcile.DesiredReplica{du, dc, dr}

	waitStatus(t, rec, desired, du.Key(), 20*time.Second, "user running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	waitStatus(t, rec, desired, dc.Key(), 20*time.Second, "caps running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	ul := filepath.Join(dataDir, "logs", "default", "deployment", "user", "0", "user.log")
	waitLog(t, ul, "uid=1000 gid=2000")
	waitLog(t, ul, "3000")
	if b, _ := os.ReadFile(ul); strings.Contains(string(b), "rootfs-writable") {
		t.Fatalf("readOnlyRootFilesystem: a write to / succeeded:\n%s", b)
	}
	cl := filepath.Join(dataDir, "logs", "default", "deployment", "caps", "0", "caps.log")
	waitLog(t, cl, "CapEff:\t0000000000000400") // NET_BIND_SERVICE only
	waitLog(t, cl, "Seccomp:\t2")
	waitLog(t, cl, "NoNewPrivs:\t1")

	st := statusOf(t, rec, desired, dr.Key())
	if st.Phase != manifest.PhasePending || st.Reason != "CreateContainerConfigError" || !strings.Contains(st.Message, "runAsNonRoot") {
		t.Fatalf("runAsNonRoot with a root image: %+v", st)
	}
}

func TestLifecycleHooks(t *testing.T) {
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	rec := newReconciler(t, rt, dataDir)
	out := t.TempDir()

	c := bb("app", "trap 'echo sigterm >> /out/events; exit 0' TERM; echo main >> /out/events; while true; do sleep 0.1; done")
	c.VolumeMounts = []manifest.VolumeMount{{Name: "out", MountPath: "/out"}}
	c.Lifecycle = &manifest.Lifecycle{
		PostStart: &manifest.LifecycleHandler{Exec: &manifest.ExecAction{Command: []string{"sh", "-c", "echo postStart >> /out/events"}}},
		PreStop:   &manifest.LifecycleHandler{Exec: &manifest.ExecAction{Command: []string{"sh", "-c", "sleep 1; echo preStop >> /out/events"}}},
	}
	d := pod("hooks", c)
	grace := int64(10)
	d.Pod.TerminationGracePeriodSeconds = &grace
	d.Pod.Volumes = []manifest.Volume{{Name: "out", HostPath: &manifest.HostPathVolumeSource{Path: out}}}
	// preStop by httpGet on a named port, inside the replica's namespace.
	web := bb("web", "mkdir -p /www; echo ok > /www/prestop; exec httpd -f -vv -p 8080 -h /www")
	web.Ports = []manifest.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}}
	web.Lifecycle = &manifest.Lifecycle{PreStop: &manifest.LifecycleHandler{HTTPGet: &manifest.HTTPGetAction{Path: "/prestop", Port: manifest.IntOrString{IsString: true, StrVal: "http"}, Scheme: "HTTP"}}}
	dw := pod("webhook", web)
	desired := []reconcile.DesiredReplica{d, dw}
	waitStatus(t, rec, desired, d.Key(), 20*time.Second, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	waitStatus(t, rec, desired, dw.Key(), 20*time.Second, "web running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	waitLog(t, filepath.Join(out, "events"), "postStart")
	time.Sleep(500 * time.Millisecond) // httpd listening

	start := time.Now()
	syncDone(t, rec, nil)
	took := time.Since(start)
	b, _ := os.ReadFile(filepath.Join(out, "events"))
	lines := strings.Fields(string(b))
	// postStart runs alongside the main process: its place is not fixed.
	var rest []string
	for _, l := range lines {
		if l != "postStart" {
			rest = append(rest, l)
		}
	}
	if strings.Join(rest, " ") != "main preStop sigterm" {
		t.Fatalf("events %q, want main, preStop, then sigterm", lines)
	}
	if took > 8*time.Second {
		t.Fatalf("stop took %s: SIGTERM was not sent after preStop", took)
	}
	t.Logf("preStop (1 s) + SIGTERM stop: %s", took.Round(10*time.Millisecond))
	if l := logOf(dataDir, dw, "web"); !strings.Contains(l, "url:/prestop") || !strings.Contains(l, "response:200") {
		t.Fatalf("preStop httpGet did not reach the container:\n%s", l)
	}
}
