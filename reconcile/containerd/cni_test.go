package containerd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/reconcile/cni"
)

// Replicas on the real CNI plugins, on a bridge and subnet of the test's
// own.

func cniReconciler(t *testing.T, rt *Runtime, dataDir string, cfg cni.Config) *reconcile.Reconciler {
	t.Helper()
	n, err := cni.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reconcile.New(reconcile.Config{Node: "n1", DataDir: dataDir, Runtime: rt, Logger: testLogger(t), Network: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	return rec
}

// httpdPod serves its own status.podIP on :8080.
func httpdPod(name string, index int) reconcile.DesiredReplica {
	c := bb("httpd", "mkdir -p /www && echo -n $POD_IP > /www/index.html && exec httpd -f -p 8080 -h /www")
	c.Env = []manifest.EnvVar{{Name: "POD_IP", ValueFrom: &manifest.EnvVarSource{FieldRef: &manifest.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
	c.Ports = []manifest.ContainerPort{{ContainerPort: 8080, Protocol: "TCP"}}
	d := pod(name, c)
	d.Index = index
	return d
}

func syncAll(t *testing.T, rec *reconcile.Reconciler, desired []reconcile.DesiredReplica, what string, cond func(manifest.ReplicaStatus) bool) map[reconcile.ReplicaKey]manifest.ReplicaStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		obs, err := rec.Sync(context.Background(), desired)
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, d := range desired {
			if !cond(obs[d.Key()]) {
				ok = false
			}
		}
		if ok {
			return obs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached; last %+v", what, obs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReplicasOwnAddressesAndHostPort(t *testing.T) {
	tn := testenv.NewCNINet(t)
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	cfg := cni.Config{BinDirs: []string{tn.BinDir}, Name: tn.Name, Bridge: tn.Bridge, PodCIDR: tn.CIDR, StateDir: tn.StateDir}
	rec := cniReconciler(t, rt, dataDir, cfg)
	_, subnet, _ := net.ParseCIDR(tn.CIDR)

	// Two replicas of one Deployment, both on port 8080, and a Pod that
	// publishes its port on the host.
	hostPort := int32(21000 + os.Getpid()%10000)
	edge := httpdPod("edge", 0)
	edge.Pod.Containers[0].Ports[0].HostPort = hostPort
	desired := []reconcile.DesiredReplica{httpdPod("web", 0), httpdPod("web", 1), edge}
	obs := syncAll(t, rec, desired, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	ips := map[string]bool{}
	for _, d := range desired {
		ip := obs[d.Key()].PodIP
		if p := net.ParseIP(ip); p == nil || !subnet.Contains(p) {
			t.Fatalf("%s/%d: podIP %q not in %s", d.Workload.Name, d.Index, ip, tn.CIDR)
		}
		if ips[ip] {
			t.Fatalf("podIP %s given twice", ip)
		}
		ips[ip] = true
		// Each answers on its own address, with the address its
		// status.podIP env var got.
		testenv.WaitHTTP(t, "http://"+ip+":8080/", ip, 15*time.Second)
	}
	edgeIP := obs[edge.Key()].PodIP
	testenv.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort), edgeIP, 15*time.Second)
	if h := hostIPv4(); h != "" {
		testenv.WaitHTTP(t, fmt.Sprintf("http://%s:%d/", h, hostPort), edgeIP, 15*time.Second)
	}

	// A new reconciler (an agent restart) adopts the replicas and knows
	// their addresses.
	rec2 := cniReconciler(t, rt, dataDir, cfg)
	obs2 := syncAll(t, rec2, desired, "adopted", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	for _, d := range desired {
		if obs2[d.Key()].PodIP != obs[d.Key()].PodIP {
			t.Fatalf("%s/%d: podIP %q after restart, was %q", d.Workload.Name, d.Index, obs2[d.Key()].PodIP, obs[d.Key()].PodIP)
		}
	}

	// A new template with another host port: the namespace is wired
	// again, the old port unpublished.
	moved := httpdPod("edge", 0)
	moved.SpecHash = "h2"
	moved.Pod.Containers[0].Ports[0].HostPort = hostPort + 1
	desired[2] = moved
	st := syncUntil(t, rec2, []reconcile.DesiredReplica{moved, desired[0], desired[1]}, 30*time.Second, "edge replaced", func(s manifest.ReplicaStatus) bool {
		return s.Phase == manifest.PhaseRunning && s.SpecHash == "h2"
	})
	newIP := st.PodIP
	testenv.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort+1), newIP, 15*time.Second)
	if _, err := testenv.HTTPGet(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err == nil {
		t.Fatal("the old host port still answers")
	}
	if newIP != edgeIP {
		delete(ips, edgeIP)
		ips[newIP] = true
	}

	// Removing the replicas releases their addresses and host port.
	alloc := filepath.Join(tn.StateDir, "networks", tn.Name)
	for ip := range ips {
		if _, err := os.Stat(filepath.Join(alloc, ip)); err != nil {
			t.Fatalf("no allocation for %s: %v", ip, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		syncDone(t, rec2, nil)
		es, _ := os.ReadDir(filepath.Join(dataDir, "netns"))
		if len(es) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespaces left: %v", es)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for ip := range ips {
		if _, err := os.Stat(filepath.Join(alloc, ip)); !os.IsNotExist(err) {
			t.Fatalf("allocation of %s left: %v", ip, err)
		}
	}
	if rules := testenv.NatRulesOf(t, tn.Name, ""); len(rules) != 0 {
		t.Fatalf("nat rules left:\n%s", strings.Join(rules, "\n"))
	}
}

func hostIPv4() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil && !strings.HasPrefix(ip.IP.String(), "10.2") {
			return ip.IP.String()
		}
	}
	return ""
}

func TestCNIFailureLeavesReplicaPending(t *testing.T) {
	tn := testenv.NewCNINet(t)
	rt, _ := newRuntime(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(dataDir, "netns")) })
	missing := filepath.Join(t.TempDir(), "no-plugins")
	rec := cniReconciler(t, rt, dataDir, cni.Config{BinDirs: []string{missing}, Name: tn.Name, Bridge: tn.Bridge, PodCIDR: tn.CIDR, StateDir: tn.StateDir})

	web := httpdPod("web", 0)
	host := pod("host", bb("main", "sleep 1000"))
	host.Pod.HostNetwork = true
	desired := []reconcile.DesiredReplica{web, host}
	syncUntil(t, rec, []reconcile.DesiredReplica{host, web}, 20*time.Second, "hostNetwork replica running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	st := statusOf(t, rec, desired, web.Key())
	if st.Phase != manifest.PhasePending || st.Reason != "CreatePodSandboxError" || !strings.Contains(st.Message, `failed to find plugin "bridge"`) || !strings.Contains(st.Message, missing) {
		t.Fatalf("replica with no plugins: %+v", st)
	}
	if st.PodIP != "" {
		t.Fatalf("pending replica has podIP %q", st.PodIP)
	}
	if h := statusOf(t, rec, desired, host.Key()); h.PodIP == "" {
		t.Fatalf("hostNetwork replica has no podIP: %+v", h)
	}
	// A retry of the set-up may be in flight on the replica's worker.
	if err := rec.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(filepath.Join(dataDir, "netns")); len(es) != 0 {
		t.Fatalf("namespace left by a failed setup: %v", es)
	}
	if es, _ := os.ReadDir(filepath.Join(tn.StateDir, "networks", tn.Name)); len(es) > 0 {
		for _, e := range es {
			if net.ParseIP(e.Name()) != nil {
				t.Fatalf("address %s allocated by a failed setup", e.Name())
			}
		}
	}
}
