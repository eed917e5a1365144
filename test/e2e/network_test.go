package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const webApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: httpd
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "mkdir -p /www && echo -n $POD_IP > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports: [{containerPort: 8080}]
          env:
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
---
apiVersion: v1
kind: Pod
metadata: {name: edge}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: httpd
      image: busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "mkdir -p /www && echo -n edge > /www/index.html && exec httpd -f -p 8080 -h /www"]
      ports: [{containerPort: 8080, hostPort: %d}]
`

func fetch(url string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Each replica gets its own address through CNI, reported in status and
// given to status.podIP; two replicas of one Deployment on one node both
// serve port 8080; a hostPort is published on the node; removing the
// workloads releases the addresses.
func TestReplicaNetworkWithAgent(t *testing.T) {
	e := newEnv(t)
	hostPort := 22000 + os.Getpid()%10000
	e.work.WriteFile("web.yaml", fmt.Sprintf(webApp, hostPort))
	e.work.Commit("web")
	e.work.Push()
	o := e.opts(t, "node-1")
	ag := startAgent(t, o)

	ips := map[string]string{}
	waitFor(t, "three replicas running with addresses", 90*time.Second, func() (bool, string) {
		s, err := ag.status()
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, r := range s.Replicas {
			if r.Status.Phase == "Running" && r.Status.PodIP != "" {
				ips[fmt.Sprintf("%s-%d", r.Workload.Name, r.Index)] = r.Status.PodIP
				n++
			}
		}
		return n == 3, fmt.Sprintf("%+v", s.Replicas)
	})
	_, subnet, _ := net.ParseCIDR(cniNet.CIDR)
	seen := map[string]bool{}
	for name, ip := range ips {
		if !subnet.Contains(net.ParseIP(ip)) || seen[ip] {
			t.Fatalf("%s: address %s not in %s or given twice (%v)", name, ip, cniNet.CIDR, ips)
		}
		seen[ip] = true
		want := ip
		if strings.HasPrefix(name, "edge") {
			want = "edge"
		}
		waitFor(t, name+" answers on its address", 20*time.Second, func() (bool, string) {
			got, err := fetch("http://" + ip + ":8080/")
			return err == nil && got == want, fmt.Sprintf("%q %v", got, err)
		})
	}
	waitFor(t, "the host port answers", 20*time.Second, func() (bool, string) {
		got, err := fetch(fmt.Sprintf("http://127.0.0.1:%d/", hostPort))
		return err == nil && got == "edge", fmt.Sprintf("%q %v", got, err)
	})
	// The status branch records what the node reported at its next
	// status commit (at most --status-interval later).
	waitFor(t, "driftless status shows the address", 20*time.Second, func() (bool, string) {
		out, err := exec.Command(e.bin, "status", "--repo", e.url).CombinedOutput()
		return err == nil && strings.Contains(string(out), ips["web-0"]), fmt.Sprintf("%s %v\n%s", ips["web-0"], err, out)
	})

	if es, _ := os.ReadDir(o.dataDir + "/cni/results"); len(es) != 3 {
		t.Fatalf("cached results in the data dir: %v, want 3", es)
	}

	e.work.Remove("web.yaml")
	e.work.Commit("no web")
	e.work.Push()
	alloc := cniNet.StateDir + "/networks/" + cniNet.Name + "/"
	waitFor(t, "addresses released, namespaces removed", 60*time.Second, func() (bool, string) {
		if es, _ := os.ReadDir(o.dataDir + "/netns"); len(es) > 0 {
			return false, fmt.Sprintf("%d namespaces left", len(es))
		}
		for ip := range seen {
			if _, err := os.Stat(alloc + ip); err == nil {
				return false, ip + " still allocated"
			}
		}
		return true, ""
	})
	if es, _ := os.ReadDir(o.dataDir + "/cni/results"); len(es) > 0 {
		t.Fatalf("cached results of removed replicas left: %v", es)
	}
}
