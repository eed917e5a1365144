package netproxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/services"
)

func rec(name, ip string, port int32, eps ...services.Endpoint) services.Record {
	return services.Record{
		Service: manifest.Ref{Namespace: "default", Kind: "Service", Name: name}, Type: manifest.ServiceClusterIP,
		ClusterIP: ip, Ports: []services.Port{{Name: "http", Protocol: "TCP", Port: port, TargetPort: "8080"}}, Endpoints: eps,
	}
}

func ep(ip string, port int32) services.Endpoint {
	return services.Endpoint{IP: ip, Node: "n1", Replica: "Deployment/web/0", Ready: true, Ports: []int32{port}}
}

func TestRenderIsDeterministicAndBalanced(t *testing.T) {
	recs := []services.Record{
		rec("web", "10.96.0.20", 80, ep("10.88.0.2", 8080), ep("10.88.0.3", 8080), ep("10.88.0.4", 8080)),
		rec("empty", "10.96.0.21", 80),
	}
	a := Render(Config{}, recs)
	b := Render(Config{}, []services.Record{recs[1], recs[0]})
	if a != b {
		t.Fatal("the order of records changed the rules")
	}
	for _, want := range []string{"--probability 0.3333333333", "--probability 0.5000000000", "DNAT --to-destination 10.88.0.4:8080"} {
		if !strings.Contains(a.NAT, want) {
			t.Errorf("nat rules lack %q:\n%s", want, a.NAT)
		}
	}
	if !strings.Contains(a.Filter, "-d 10.96.0.21/32 -p tcp -m tcp --dport 80") || !strings.Contains(a.Filter, "REJECT") {
		t.Errorf("a Service without endpoints is not rejected:\n%s", a.Filter)
	}
}

// inNetNS runs f inside a new network namespace with a default route
// through a veth pair, so that the test's rules touch nothing of the host's.
func inNetNS(t testing.TB, f func() error) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Require(t, "iptables", "iptables-restore", "iptables-save", "ip")
	path := filepath.Join(t.TempDir(), "ns")
	if err := reconcile.CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reconcile.RemoveNetNS(path) })
	err := reconcile.InNetNS(path, func() error {
		for _, args := range [][]string{
			{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
			{"addr", "add", "192.0.2.1/24", "dev", "v0"},
			{"link", "set", "v1", "up"},
			{"link", "set", "v0", "up"},
			{"route", "add", "default", "via", "192.0.2.2", "dev", "v0"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return errors.New("ip " + strings.Join(args, " ") + ": " + string(out))
			}
		}
		return f()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serveTCP answers every connection to addr with reply, until stop.
func serveTCP(addr, reply string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return func() { ln.Close() }, nil
}

func saveAll(t testing.TB) string {
	var b strings.Builder
	for _, tb := range []string{"nat", "filter"} {
		out, err := exec.Command("iptables-save", "-t", tb).Output()
		if err != nil {
			t.Errorf("iptables-save: %v", err)
		}
		b.Write(out)
	}
	return b.String()
}

// Real iptables in a namespace of its own: a connection to the virtual
// address reaches the endpoint, one to a Service without endpoints is
// refused at once; a Service removed takes its chains along; a new Proxy
// (an agent restarted) takes the chains over without duplicating a rule
// or a hook.
func TestSyncProgramsTheKernel(t *testing.T) {
	ctx := context.Background()
	inNetNS(t, func() error {
		stop, err := serveTCP("127.0.0.1:8080", "hello from the endpoint\n")
		if err != nil {
			return err
		}
		defer stop()
		recs := []services.Record{rec("web", "10.96.0.20", 80, ep("127.0.0.1", 8080)), rec("empty", "10.96.0.21", 80)}
		var p Proxy
		if err := p.Sync(ctx, Config{}, recs); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", "10.96.0.20:80", 3*time.Second)
		if err != nil {
			t.Errorf("dial the ClusterIP: %v", err)
		} else {
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			c.Close()
			if !strings.Contains(string(buf[:n]), "hello from the endpoint") {
				t.Errorf("read %q", buf[:n])
			}
		}
		start := time.Now()
		_, err = net.DialTimeout("tcp", "10.96.0.21:80", 3*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
			t.Errorf("a Service without endpoints must refuse at once, got %v after %s", err, time.Since(start))
		}

		// Drop "empty", give "web" another endpoint.
		recs = []services.Record{rec("web", "10.96.0.20", 80, ep("127.0.0.1", 8080), ep("127.0.0.2", 8080))}
		if err := p.Sync(ctx, Config{}, recs); err != nil {
			return err
		}
		if p.Partial == 0 {
			t.Errorf("a change of endpoints must rewrite only the chains that changed (%d restores, %d partial)", p.Restores, p.Partial)
		}
		have := saveAll(t)
		if strings.Contains(have, "10.96.0.21") {
			t.Errorf("rules of a removed Service remain:\n%s", have)
		}
		// An agent restarted: a new Proxy, the same Services.
		var again Proxy
		if err := again.Sync(ctx, Config{}, recs); err != nil {
			return err
		}
		after := saveAll(t)
		for _, hook := range []string{"driftless-services", "driftless-postrouting", "driftless-reject"} {
			if n, m := strings.Count(have, hook), strings.Count(after, hook); n != m || n == 0 {
				t.Errorf("hook %s: %d before the restart, %d after", hook, n, m)
			}
		}
		_, wantRules := ownedLines(Render(Config{}, recs).NAT)
		_, haveRules := ownedLines(after)
		for c, n := range wantRules {
			if haveRules[c] != n {
				t.Errorf("chain %s has %d rules, want %d", c, haveRules[c], n)
			}
		}
		// Someone flushed a chain: the next Sync puts it back.
		if out, err := exec.Command("iptables", "-t", "nat", "-F", ChainServices).CombinedOutput(); err != nil {
			return errors.New(string(out))
		}
		if err := again.Sync(ctx, Config{}, recs); err != nil {
			return err
		}
		if _, got := ownedLines(saveAll(t)); got[ChainServices] != wantRules[ChainServices] {
			t.Errorf("flushed chain not restored: %d rules, want %d", got[ChainServices], wantRules[ChainServices])
		}
		if err := Cleanup(ctx); err != nil {
			return err
		}
		if left := saveAll(t); strings.Contains(left, "DRIFTLESS") || strings.Contains(left, "DL-S") {
			t.Errorf("cleanup left rules:\n%s", left)
		}
		return nil
	})
}

func TestDNSRule(t *testing.T) {
	cfg := Config{ClusterDNS: netip.MustParseAddr("10.96.0.10"), DNSTarget: netip.MustParseAddrPort("192.0.2.1:10053")}
	nat := Render(cfg, nil).NAT
	for _, proto := range []string{"udp", "tcp"} {
		if !strings.Contains(nat, "-d 10.96.0.10/32 -p "+proto+" -m "+proto+" --dport 53") || !strings.Contains(nat, "--to-destination 192.0.2.1:10053") {
			t.Fatalf("no %s DNS rule:\n%s", proto, nat)
		}
	}
}

// A UDP Service answers; with ClientIP affinity every connection of one
// client goes to the same endpoint, without it both endpoints serve.
func TestSyncUDPAndAffinity(t *testing.T) {
	ctx := context.Background()
	inNetNS(t, func() error {
		for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
			stop, err := serveTCP(ip+":8080", ip)
			if err != nil {
				return err
			}
			defer stop()
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:5353")
		if err != nil {
			return err
		}
		defer pc.Close()
		go func() {
			buf := make([]byte, 512)
			for {
				n, addr, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(append([]byte("udp:"), buf[:n]...), addr)
			}
		}()
		web := rec("web", "10.96.0.30", 80, ep("127.0.0.1", 8080), ep("127.0.0.2", 8080))
		sticky := rec("sticky", "10.96.0.31", 80, ep("127.0.0.1", 8080), ep("127.0.0.2", 8080))
		sticky.SessionAffinity, sticky.AffinitySeconds = "ClientIP", 60
		udp := rec("dns", "10.96.0.32", 53, ep("127.0.0.1", 5353))
		udp.Ports[0].Protocol = "UDP"
		var p Proxy
		if err := p.Sync(ctx, Config{}, []services.Record{web, sticky, udp}); err != nil {
			return err
		}
		ask := func(addr string) string {
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return err.Error()
			}
			defer c.Close()
			b := make([]byte, 32)
			n, _ := c.Read(b)
			return string(b[:n])
		}
		seen, stuck := map[string]int{}, map[string]int{}
		for range 40 {
			seen[ask("10.96.0.30:80")]++
			stuck[ask("10.96.0.31:80")]++
		}
		if len(seen) != 2 {
			t.Errorf("random balancing over two endpoints: %v", seen)
		}
		if len(stuck) != 1 {
			t.Errorf("ClientIP affinity: one endpoint for one client, got %v", stuck)
		}
		c, err := net.Dial("udp", "10.96.0.32:53")
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte("ping"))
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err != nil || string(b[:n]) != "udp:ping" {
			t.Errorf("UDP Service: %q %v", b[:n], err)
		}
		return Cleanup(ctx)
	})
}
