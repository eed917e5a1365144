package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/miekg/dns"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// appHost is one host of the LAN: its containerd and agent.
type appHost struct {
	*testenv.Host
	cd     *testenv.Containerd
	client *containerd.Client
	opts   agentOpts
	agent  *agentProc
	// git is the LAN's Git host (a git daemon on the gateway).
	git *testenv.Daemon
}

// startHosts makes n hosts on a LAN, each with its own containerd and
// agent inside its network namespace (gossip between them when n > 1),
// fetching and pushing over the LAN from a git daemon on its gateway.
func startHosts(t testing.TB, e *env, n int, extra ...string) (*testenv.LAN, []*appHost) {
	t.Helper()
	lan := testenv.NewLAN(t, "node-", n)
	_, port, _ := net.SplitHostPort(freePort(t))
	git := testenv.GitDaemonOn(t, filepath.Dir(e.repoDir), lan.Gateway.String(), port)
	repo := git.URL + "/" + filepath.Base(e.repoDir)
	var hosts []*appHost
	var gossip []string
	for _, h := range lan.Hosts {
		gossip = append(gossip, h.IP.String()+":7946")
	}
	for i, h := range lan.Hosts {
		ah := &appHost{Host: h, cd: testenv.StartContainerdIn(t, h.NetNS), git: git}
		ah.client = ah.cd.Client(t)
		o := e.opts(t, h.Name)
		o.sock, o.netns, o.repo = ah.cd.Address, h.NetNS, repo
		o.api = h.IP.String() + ":7480"
		o.extra = append([]string{"--node-ip", h.IP.String()}, extra...)
		if n > 1 {
			var seeds []string
			for j, g := range gossip {
				if j != i {
					seeds = append(seeds, g)
				}
			}
			o.extra = append(o.extra, "--gossip", gossip[i], "--join", strings.Join(seeds, ","), "--insecure-gossip",
				"--bootstrap-expect", fmt.Sprint(n), "--node-grace", "3s", "--status-poll", "1s")
		}
		ah.opts = o
		ah.agent = startAgent(t, o)
		hosts = append(hosts, ah)
	}
	return lan, hosts
}

// die is the host's death: its agent killed, every container killed,
// its containerd stopped and its link down.
func (h *appHost) die(t testing.TB) {
	t.Helper()
	h.agent.kill()
	ctx := context.Background()
	nss, _ := h.client.NamespaceService().List(ctx)
	for _, n := range nss {
		nctx := namespaces.WithNamespace(ctx, n)
		cs, _ := h.client.Containers(nctx)
		for _, c := range cs {
			if tk, err := c.Task(nctx, nil); err == nil {
				_ = tk.Kill(nctx, syscall.SIGKILL)
			}
		}
	}
	h.cd.Stop(t)
	h.LinkDown(t)
}

// backendApp is a backend Deployment answering with its hostname (ready
// while /shared/down-<hostname> is absent), its ClusterIP and headless
// Services, and a frontend behind a NodePort that asks the backend by
// its short name.
func backendApp(shared string, backends int, extraSpec, frontendSpec string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: frontend}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata: {name: frontend-config}
data: {BACKEND_NAME: backend}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      terminationGracePeriodSeconds: 1
%[3]s      volumes: [{name: shared, hostPath: {path: %[1]s}}]
      containers:
      - name: httpd
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec busybox httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        volumeMounts: [{name: shared, mountPath: /shared}]
        readinessProbe:
          exec: {command: [sh, -c, "test ! -f /shared/down-$(hostname)"]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  selector: {app: backend}
  ports: [{name: web, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: backend-hl}
spec:
  clusterIP: None
  selector: {app: backend}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend}
spec:
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      serviceAccountName: frontend
      terminationGracePeriodSeconds: 1
%[4]s      containers:
      - name: httpd
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command:
        - sh
        - -c
        - |
          mkdir -p /www/cgi-bin
          # busybox's wget crashes when statically linked: HTTP by nc.
          printf '#!/bin/sh\nprintf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc -w 3 "$1" "$2" 2>&1 | tr -d "\\r" | sed -e "1,/^$/d"\n' > /www/get.sh
          printf '#!/bin/sh\necho Content-Type: text/plain\necho\nsh /www/get.sh %%s 80\n' "$BACKEND_NAME" > /www/cgi-bin/ask
          printf '#!/bin/sh\necho Content-Type: text/plain\necho\nbusybox nslookup "$QUERY_STRING"\necho; cat /etc/resolv.conf; env | grep BACKEND_SERVICE\n' > /www/cgi-bin/lookup
          chmod +x /www/cgi-bin/*
          exec busybox httpd -f -p 8080 -h /www
        ports: [{containerPort: 8080}]
        envFrom: [{configMapRef: {name: frontend-config}}]
---
apiVersion: v1
kind: Service
metadata: {name: frontend}
spec:
  type: NodePort
  selector: {app: frontend}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
`, shared, backends, extraSpec, frontendSpec)
}

func fetchURL(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

// askBackends asks through the frontend's NodePort n times and counts the
// answers by backend hostname.
func askBackends(nodeIP string, n int) (map[string]int, error) {
	seen := map[string]int{}
	for range n {
		out, err := fetchURL("http://" + nodeIP + ":30080/cgi-bin/ask")
		if err != nil {
			return seen, err
		}
		seen[out]++
	}
	return seen, nil
}

func serviceRecord(t testing.TB, url, name string) (services.Record, bool) {
	st, err := status.ReadState(context.Background(), url, status.DefaultBranch, git.Auth{})
	if err != nil {
		return services.Record{}, false
	}
	r, ok := st.Services[manifest.Ref{Namespace: "default", Kind: "Service", Name: name}]
	return r, ok
}

// An application on one host in a network namespace of its own: the
// frontend's NodePort answers from outside the host, the frontend
// reaches both backends by the short name "backend" through the cluster
// DNS and the ClusterIP; a pod resolves the Service's full name to its
// ClusterIP and the headless one to the ready pods; a backend failing
// readiness leaves the endpoints; the rules survive an agent restart
// without a duplicate.
func TestApplicationOnOneHost(t *testing.T) {
	e := newEnv(t)
	shared := t.TempDir()
	e.work.WriteFile("app.yaml", backendApp(shared, 2, "", ""))
	e.work.Commit("frontend and backend")
	e.work.Push()
	_, hosts := startHosts(t, e, 1)
	h := hosts[0]

	var seen map[string]int
	waitFor(t, "both backends answer through the frontend's NodePort", 120*time.Second, func() (bool, string) {
		s, err := askBackends(h.IP.String(), 12)
		seen = s
		return err == nil && len(s) == 2, fmt.Sprint(s, err)
	})
	rec, ok := serviceRecord(t, e.url, "backend")
	if !ok || len(rec.Endpoints) != 2 {
		t.Fatalf("services/default/backend.yaml: %+v", rec)
	}
	out, err := fetchURL("http://" + h.IP.String() + ":30080/cgi-bin/lookup?backend.default.svc.cluster.local")
	if err != nil || !strings.Contains(out, rec.ClusterIP) || !strings.Contains(out, "search default.svc.cluster.local svc.cluster.local cluster.local") ||
		!strings.Contains(out, "BACKEND_SERVICE_HOST="+rec.ClusterIP) {
		t.Fatalf("nslookup of the Service in a pod (want %s, the search path and BACKEND_SERVICE_HOST): %v\n%s", rec.ClusterIP, err, out)
	}
	out, err = fetchURL("http://" + h.IP.String() + ":30080/cgi-bin/lookup?backend-hl.default.svc.cluster.local")
	for _, ep := range rec.Endpoints {
		if err != nil || !strings.Contains(out, ep.IP) {
			t.Fatalf("the headless Service must resolve to the pod %s: %v\n%s", ep.IP, err, out)
		}
	}

	// The node's DNS server answers its pods, not the network.
	m := new(dns.Msg)
	m.SetQuestion("backend.default.svc.cluster.local.", dns.TypeA)
	if r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, h.IP.String()+":10053"); err == nil {
		t.Fatalf("the node's DNS server answered a query from outside: %v", r)
	}

	// One backend fails readiness: it leaves the endpoints, every answer
	// comes from the other.
	var down string
	for host := range seen {
		down = host
		break
	}
	if err := os.WriteFile(filepath.Join(shared, "down-"+down), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	waitFor(t, "the unready backend left the Service", 60*time.Second, func() (bool, string) {
		s, err := askBackends(h.IP.String(), 10)
		return err == nil && s[down] == 0 && len(s) == 1, fmt.Sprint(s, err)
	})
	t.Logf("readiness failure → out of the Service's answers: %s", time.Since(left).Round(100*time.Millisecond))
	if rec, _ := serviceRecord(t, e.url, "backend"); len(rec.Endpoints) != 1 {
		t.Fatalf("want 1 endpoint on the branch, got %+v", rec.Endpoints)
	}

	// The agent restarted: the rules are taken over, not duplicated.
	before := iptablesSave(t, h)
	h.agent.kill()
	h.agent = startAgent(t, h.opts)
	waitFor(t, "the agent back", 30*time.Second, func() (bool, string) { _, err := h.agent.status(); return err == nil, fmt.Sprint(err) })
	time.Sleep(2 * time.Second)
	after := iptablesSave(t, h)
	for _, marker := range []string{"driftless-services", "DNAT", "DL-SVC-"} {
		if strings.Count(before, marker) != strings.Count(after, marker) {
			t.Errorf("%s: %d rules before the restart, %d after", marker, strings.Count(before, marker), strings.Count(after, marker))
		}
	}
	if _, err := askBackends(h.IP.String(), 3); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}

func iptablesSave(t testing.TB, h *appHost) string {
	t.Helper()
	out, err := h.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// The same application across three hosts with one pod network
// (--cluster-cidr): the two backends on two hosts (required pod
// anti-affinity), the frontend's NodePort answering on every host from
// both; a partition of one host (link down, up) leaves no duplicate rule
// or route; a backend's host dying (agent killed, link down) leaves the
// survivors answering within the node grace and a few seconds.
func TestApplicationAcrossHosts(t *testing.T) {
	e := newEnv(t)
	shared := t.TempDir()
	e.work.WriteFile("app.yaml", backendApp(shared, 2, `      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: backend}}
            topologyKey: kubernetes.io/hostname
`, "      nodeSelector: {kubernetes.io/hostname: node-1}\n"))
	e.work.Commit("frontend and two backends apart")
	e.work.Push()
	_, hosts := startHosts(t, e, 3, "--cluster-cidr", "10.244.0.0/16")

	for _, h := range hosts {
		waitFor(t, "both backends answer through "+h.Name+"'s NodePort", 120*time.Second, func() (bool, string) {
			s, err := askBackends(h.IP.String(), 12)
			return err == nil && len(s) == 2, fmt.Sprint(s, err)
		})
	}
	st, err := status.ReadState(context.Background(), e.url, status.DefaultBranch, git.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	subnets := map[string]bool{}
	for _, h := range hosts {
		n := st.Nodes[h.Name]
		if n.PodCIDR == "" || subnets[n.PodCIDR] || n.Address != h.IP.String() {
			t.Fatalf("%s: podCIDR %q address %q (want a subnet of its own and %s)", h.Name, n.PodCIDR, n.Address, h.IP)
		}
		subnets[n.PodCIDR] = true
	}
	backendNodes := map[string]bool{}
	for _, r := range st.Placements[manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "backend"}].Replicas {
		backendNodes[r.Node] = true
	}
	var frontendNode string
	for _, r := range st.Placements[manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "frontend"}].Replicas {
		frontendNode = r.Node
	}
	if len(backendNodes) != 2 {
		t.Fatalf("backends on %v, want two hosts", backendNodes)
	}
	rec, _ := serviceRecord(t, e.url, "backend")
	out, err := fetchURL("http://" + hosts[0].IP.String() + ":30080/cgi-bin/lookup?backend.default.svc.cluster.local")
	if err != nil || !strings.Contains(out, rec.ClusterIP) {
		t.Fatalf("nslookup in the frontend: want %s: %v\n%s", rec.ClusterIP, err, out)
	}

	// A partition of one host and back: the same rules and routes.
	counts := func(h *appHost) string {
		rules := iptablesSave(t, h)
		routes, _ := h.Command("ip", "-4", "route", "show", "proto", "203").Output()
		return fmt.Sprintf("%d DNAT, %d hooks, %d routes", strings.Count(rules, "DNAT"), strings.Count(rules, "driftless-services"), strings.Count(string(routes), "via"))
	}
	p := hosts[2]
	before := counts(p)
	p.LinkDown(t)
	time.Sleep(6 * time.Second) // past the node grace: the others see it dead
	p.LinkUp(t)
	waitFor(t, "the partitioned host back and answering", 90*time.Second, func() (bool, string) {
		s, err := askBackends(p.IP.String(), 12)
		return err == nil && len(s) == 2 && counts(p) == before, fmt.Sprint(s, err, counts(p), " want ", before)
	})

	// A backend's host dies: not the frontend's, not the leader's.
	var victim *appHost
	for _, h := range hosts {
		if backendNodes[h.Name] && h.Name != frontendNode && h.Name != st.Cluster.Leader {
			victim = h
		}
	}
	if victim == nil || frontendNode != "node-1" {
		t.Fatalf("no backend host apart from the frontend's and the leader's (frontend on %s, leader %s, backends %v)", frontendNode, st.Cluster.Leader, backendNodes)
	}
	var survivor *appHost
	for _, h := range hosts {
		if h != victim {
			survivor = h
		}
	}
	died := time.Now()
	victim.die(t)
	t.Logf("host death (agent, containers, containerd, link) took %s", time.Since(died).Round(100*time.Millisecond))
	waitFor(t, "the dead host's backend out of the Service on the branch", 60*time.Second, func() (bool, string) {
		r, _ := serviceRecord(t, e.url, "backend")
		return len(r.Endpoints) == 1, fmt.Sprint(r.Endpoints)
	})
	t.Logf("backend host died → its endpoint off the status branch: %s", time.Since(died).Round(100*time.Millisecond))
	waitFor(t, "the survivors answer every request without the dead host", 60*time.Second, func() (bool, string) {
		s, err := askBackends(survivor.IP.String(), 10)
		return err == nil && len(s) == 1, fmt.Sprint(s, err)
	})
	t.Logf("backend host died → every request answered by the survivor: %s (node grace 3s)", time.Since(died).Round(100*time.Millisecond))
}
