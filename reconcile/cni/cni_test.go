package cni

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
)

// Tests with the real plugins on a bridge and subnet of the test's own.

func testNetwork(t *testing.T, tn testenv.CNINet) *Network {
	t.Helper()
	n, err := New(Config{BinDirs: []string{tn.BinDir}, Name: tn.Name, Bridge: tn.Bridge, PodCIDR: tn.CIDR, StateDir: tn.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newNS(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := reconcile.CreateNetNS(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reconcile.RemoveNetNS(p) })
	return p
}

// serveIn serves body on :port inside the namespace.
func serveIn(t *testing.T, ns string, port int, body string) {
	t.Helper()
	var ln net.Listener
	if err := reconcile.InNetNS(ns, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func hostAddr(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil && !strings.HasPrefix(ip.IP.String(), "10.2") {
			return ip.IP.String()
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no non-loopback IPv4 address on the host: the hostPort check on the host's address cannot run")
	}
	t.Skip("no non-loopback IPv4 address on the host")
	return ""
}

func TestSetupGivesOwnAddressesAndPublishesHostPorts(t *testing.T) {
	tn := testenv.NewCNINet(t)
	n := testNetwork(t, tn)
	_, subnet, _ := net.ParseCIDR(tn.CIDR)
	ctx := context.Background()
	dir := t.TempDir()
	hostPort := int32(20000 + os.Getpid()%10000)

	a := reconcile.Attachment{ID: "n1_default_deployment_web_0", NSPath: newNS(t, dir, "a"),
		Ports: []reconcile.PortMapping{{HostPort: hostPort, ContainerPort: 8080, Protocol: "tcp"}}}
	b := reconcile.Attachment{ID: "n1_default_deployment_web_1", NSPath: newNS(t, dir, "b")}
	ipA, err := n.Setup(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	ipB, err := n.Setup(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{ipA, ipB} {
		if p := net.ParseIP(ip); p == nil || !subnet.Contains(p) {
			t.Fatalf("address %q not in %s", ip, tn.CIDR)
		}
	}
	if ipA == ipB {
		t.Fatalf("both replicas got %s", ipA)
	}
	// The same port in both, each answering on its own address.
	serveIn(t, a.NSPath, 8080, "replica-0")
	serveIn(t, b.NSPath, 8080, "replica-1")
	testenv.WaitHTTP(t, "http://"+ipA+":8080/", "replica-0", 10*time.Second)
	testenv.WaitHTTP(t, "http://"+ipB+":8080/", "replica-1", 10*time.Second)
	// The host port, on loopback and on the host's address.
	testenv.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort), "replica-0", 10*time.Second)
	testenv.WaitHTTP(t, fmt.Sprintf("http://%s:%d/", hostAddr(t), hostPort), "replica-0", 10*time.Second)
	if len(testenv.NatRulesOf(t, tn.Name, a.ID)) == 0 {
		t.Fatal("no nat rules for the replica with a host port")
	}

	alloc := filepath.Join(tn.StateDir, "networks", tn.Name)
	if _, err := os.Stat(filepath.Join(alloc, ipA)); err != nil {
		t.Fatalf("no address allocation for %s: %v", ipA, err)
	}
	if err := n.Teardown(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(alloc, ipA)); !os.IsNotExist(err) {
		t.Fatalf("allocation of %s left after teardown: %v", ipA, err)
	}
	if rules := testenv.NatRulesOf(t, tn.Name, a.ID); len(rules) != 0 {
		t.Fatalf("nat rules left after teardown:\n%s", strings.Join(rules, "\n"))
	}
	if _, err := testenv.HTTPGet(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err == nil {
		t.Fatal("host port still answers after teardown")
	}
	// Idempotent, also for a namespace that is gone.
	if err := n.Teardown(ctx, a); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
	if err := reconcile.RemoveNetNS(b.NSPath); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, b); err != nil {
		t.Fatalf("teardown of a removed namespace: %v", err)
	}
	if _, err := os.Stat(filepath.Join(alloc, ipB)); !os.IsNotExist(err) {
		t.Fatalf("allocation of %s left after teardown of a removed namespace: %v", ipB, err)
	}
	// (bridge 1.1 removes its masquerade rules only while the namespace
	// exists; the reconciler tears down before removing it, and a reboot,
	// the other way a namespace goes, empties iptables.)
}

func TestMissingPluginFailsSetupAndLeaksNothing(t *testing.T) {
	tn := testenv.NewCNINet(t)
	n, err := New(Config{BinDirs: []string{filepath.Join(t.TempDir(), "none")}, Name: tn.Name, Bridge: tn.Bridge, PodCIDR: tn.CIDR, StateDir: tn.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	a := reconcile.Attachment{ID: "n1_x", NSPath: newNS(t, t.TempDir(), "x")}
	_, err = n.Setup(context.Background(), a)
	if err == nil || !strings.Contains(err.Error(), `failed to find plugin "bridge"`) {
		t.Fatalf("setup with no plugins: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(tn.StateDir, "networks", tn.Name))
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			t.Fatalf("address %s allocated by a failed setup", e.Name())
		}
	}
}

func TestUserConfDir(t *testing.T) {
	tn := testenv.NewCNINet(t)
	conf := t.TempDir()
	// A user's own network, in the single-plugin *.conf form.
	body := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": %q, "type": "bridge", "bridge": %q,
		"isGateway": true, "ipam": {"type": "host-local", "subnet": %q, "dataDir": %q}}`,
		tn.Name, tn.Bridge, tn.CIDR, filepath.Join(tn.StateDir, "user"))
	if err := os.WriteFile(filepath.Join(conf, "10-user.conf"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{BinDirs: []string{tn.BinDir}, ConfDir: conf, StateDir: tn.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	a := reconcile.Attachment{ID: "n1_user", NSPath: newNS(t, t.TempDir(), "u")}
	ip, err := n.Setup(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tn.StateDir, "user", tn.Name, ip)); err != nil {
		t.Fatalf("address %s not allocated by the user's network: %v", ip, err)
	}
	serveIn(t, a.NSPath, 8080, "user")
	testenv.WaitHTTP(t, "http://"+ip+":8080/", "user", 10*time.Second)
	if err := n.Teardown(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tn.StateDir, "user", tn.Name, ip)); !os.IsNotExist(err) {
		t.Fatalf("allocation left: %v", err)
	}

	empty, err := New(Config{BinDirs: []string{tn.BinDir}, ConfDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.Setup(context.Background(), reconcile.Attachment{ID: "n1_e", NSPath: newNS(t, t.TempDir(), "e")}); err == nil || !strings.Contains(err.Error(), "no network configuration") {
		t.Fatalf("setup with an empty conf dir: %v", err)
	}
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []Config{{PodCIDR: "10.1.0.0/31"}, {PodCIDR: "fd00::/64"}, {PodCIDR: "nope"}, {Bridge: "a-very-long-bridge-name"}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// BenchmarkSetupTeardown is one replica's ADD and DEL on the agent's own
// network (bridge, host-local, portmap with one host port).
func BenchmarkSetupTeardown(b *testing.B) {
	tn := testenv.NewCNINet(b)
	n, err := New(Config{BinDirs: []string{tn.BinDir}, Name: tn.Name, Bridge: tn.Bridge, PodCIDR: tn.CIDR, StateDir: tn.StateDir})
	if err != nil {
		b.Fatal(err)
	}
	ns := filepath.Join(b.TempDir(), "ns")
	if err := reconcile.CreateNetNS(ns); err != nil {
		b.Fatal(err)
	}
	defer reconcile.RemoveNetNS(ns)
	a := reconcile.Attachment{ID: "bench", NSPath: ns, Ports: []reconcile.PortMapping{{HostPort: int32(40000 + os.Getpid()%10000), ContainerPort: 80, Protocol: "tcp"}}}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Setup(ctx, a); err != nil {
			b.Fatal(err)
		}
		if err := n.Teardown(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}
