package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// pinned is a Deployment of one busybox httpd replica on node.
func pinned(name, node string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      nodeSelector: {kubernetes.io/hostname: %[2]s}
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "mkdir -p /www && echo ok > /www/index.html && exec busybox httpd -f -p 8080 -h /www"]
`, name, node)
}

// BenchmarkPodToPod is one HTTP request from inside a replica's network
// namespace to a replica on the same host and to one on another host of
// the LAN (one pod network, --cluster-cidr, host-gw routes): what the
// hop between hosts adds.
func BenchmarkPodToPod(b *testing.B) {
	e := newEnv(b)
	e.work.WriteFile("pods.yaml", pinned("client", "node-1")+"---\n"+pinned("near", "node-1")+"---\n"+pinned("far", "node-2")+
		"---\n{apiVersion: v1, kind: Service, metadata: {name: near}, spec: {selector: {app: near}, ports: [{port: 80, targetPort: 8080}]}}\n")
	e.work.Commit("three pinned replicas")
	e.work.Push()
	_, hosts := startHosts(b, e, 2, "--cluster-cidr", "10.244.0.0/16")
	ips := map[string]string{}
	waitFor(b, "the three replicas running with addresses", 120*time.Second, func() (bool, string) {
		st, err := status.ReadState(context.Background(), e.url, status.DefaultBranch, git.Auth{})
		if err != nil {
			return false, err.Error()
		}
		for _, n := range []string{"client", "near", "far"} {
			p := st.Placements[manifest.Ref{Namespace: "default", Kind: "Deployment", Name: n}]
			if len(p.Replicas) != 1 || p.Replicas[0].Status == nil || !p.Replicas[0].Status.Ready || p.Replicas[0].Status.PodIP == "" {
				return false, n + " not ready"
			}
			ips[n] = p.Replicas[0].Status.PodIP
		}
		return true, ""
	})
	netns := filepath.Join(hosts[0].opts.dataDir, "netns", "default_deployment_client_0")
	get := func(b *testing.B, ip string) {
		c, err := reconcile.DialInNetNS(context.Background(), netns, "tcp", ip+":8080")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		body, err := io.ReadAll(c)
		if err != nil || !strings.Contains(string(body), "ok") {
			b.Fatalf("%s: %q %v", ip, body, err)
		}
	}
	for _, tc := range []struct{ name, target string }{{"SameHost", "near"}, {"OtherHost", "far"}} {
		b.Run(tc.name, func(b *testing.B) {
			get(b, ips[tc.target])
			for b.Loop() {
				get(b, ips[tc.target])
			}
		})
	}
	// A DNS query for a Service name from the client replica, through
	// the cluster DNS address (DNAT to its node's server), beside the
	// same query from the node itself (no bridge, no veth).
	query := func(b *testing.B, c net.Conn) {
		conn := &dns.Conn{Conn: c}
		m := new(dns.Msg)
		m.SetQuestion("near.default.svc.cluster.local.", dns.TypeA)
		for b.Loop() {
			if err := conn.WriteMsg(m); err != nil {
				b.Fatal(err)
			}
			r, err := conn.ReadMsg()
			if err != nil || len(r.Answer) != 1 {
				b.Fatalf("%v %v", r, err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	}
	b.Run("DNSFromPod", func(b *testing.B) {
		c, err := reconcile.DialInNetNS(context.Background(), netns, "udp", "10.96.0.10:53")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		query(b, c)
	})
	b.Run("DNSFromNode", func(b *testing.B) {
		c, err := reconcile.DialInNetNS(context.Background(), hosts[0].NetNS, "udp", "10.96.0.10:53")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		query(b, c)
	})
}

// With --pod-network vxlan a replica reaches one on another host by its
// own address through the tunnel (routes on the VXLAN device, not
// through the peer's address).
func TestPodNetworkVXLAN(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("pods.yaml", pinned("client", "node-1")+"---\n"+pinned("far", "node-2"))
	e.work.Commit("two pinned replicas")
	e.work.Push()
	_, hosts := startHosts(t, e, 2, "--cluster-cidr", "10.244.0.0/16", "--pod-network", "vxlan")
	var farIP string
	waitFor(t, "both replicas running with addresses", 120*time.Second, func() (bool, string) {
		st, err := status.ReadState(context.Background(), e.url, status.DefaultBranch, git.Auth{})
		if err != nil {
			return false, err.Error()
		}
		for _, n := range []string{"client", "far"} {
			p := st.Placements[manifest.Ref{Namespace: "default", Kind: "Deployment", Name: n}]
			if len(p.Replicas) != 1 || p.Replicas[0].Status == nil || !p.Replicas[0].Status.Ready || p.Replicas[0].Status.PodIP == "" {
				return false, n + " not ready"
			}
			if n == "far" {
				farIP = p.Replicas[0].Status.PodIP
			}
		}
		return true, ""
	})
	netns := filepath.Join(hosts[0].opts.dataDir, "netns", "default_deployment_client_0")
	waitFor(t, "the far replica answers through the tunnel", 30*time.Second, func() (bool, string) {
		c, err := reconcile.DialInNetNS(context.Background(), netns, "tcp", farIP+":8080")
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		body, _ := io.ReadAll(c)
		return strings.Contains(string(body), "ok"), string(body)
	})
	routes, _ := hosts[0].Command("ip", "route", "show", "proto", "203").Output()
	if !strings.Contains(string(routes), "dev driftless.1") {
		t.Fatalf("the route to node-2's subnet must go through the VXLAN device:\n%s", routes)
	}
}
