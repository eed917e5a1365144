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

func logOf(dataDir string, d reconcile.DesiredReplica, container string) string {
	b, _ := os.ReadFile(filepath.Join(dataDir, "logs", d.Workload.Namespace, d.Workload.Name, "0", container+".log"))
	return string(b)
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
		bb("server", "nc -l -p 9000"),
		bb("client", "until echo hello-over-localhost | nc 127.0.0.1 9000; do sleep 0.2; done; readlink /proc/self/ns/net; sleep 1000"),
	)
	desired := []reconcile.DesiredReplica{d}
	syncUntil(t, rec, desired, 20*time.Second, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logOf(dataDir, d, "server"), "hello-over-localhost") {
		if time.Now().After(deadline) {
			t.Fatalf("server never heard the client over localhost; server log %q, client log %q", logOf(dataDir, d, "server"), logOf(dataDir, d, "client"))
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
	if _, err := rec2.Sync(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
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
	waitLogCount(t, filepath.Join(dataDir, "logs", "default", "live", "0", "app.log"), "started", 2)
}
