package podnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
)

// Two hosts of a LAN joined by VXLAN: an address of one host's subnet
// answers a connection from the other through the tunnel; a peer that
// leaves takes its route, neighbour and forwarding entries along; a
// second Sync changes nothing.
func TestVXLANJoinsSubnets(t *testing.T) {
	testenv.Require(t, "ip", "bridge")
	lan := testenv.NewLAN(t, "vx", 2)
	a, b := lan.Hosts[0], lan.Hosts[1]
	sa := Route{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: a.IP}
	sb := Route{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: b.IP}
	ctx := context.Background()
	in := func(h *testenv.Host, f func() error) {
		t.Helper()
		if err := reconcile.InNetNS(h.NetNS, f); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
	}
	var ln net.Listener
	in(b, func() error {
		if out, err := exec.Command("ip", "addr", "add", "10.244.2.5/32", "dev", "lo").CombinedOutput(); err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		var err error
		if ln, err = net.Listen("tcp", "10.244.2.5:9000"); err != nil {
			return err
		}
		return VXLAN{}.Sync(ctx, sb, []Route{sa})
	})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("through the tunnel"))
			c.Close()
		}
	}()
	in(a, func() error {
		if out, err := exec.Command("ip", "addr", "add", "10.244.1.5/32", "dev", "lo").CombinedOutput(); err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		if err := (VXLAN{}).Sync(ctx, sa, []Route{sb}); err != nil {
			return err
		}
		return VXLAN{}.Sync(ctx, sa, []Route{sb}) // idempotent
	})
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var c net.Conn
	in(a, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("10.244.1.5")}}
		var err error
		c, err = d.DialContext(dctx, "tcp", "10.244.2.5:9000")
		return err
	})
	buf := make([]byte, 64)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	n, _ := c.Read(buf)
	c.Close()
	if string(buf[:n]) != "through the tunnel" {
		t.Fatalf("read %q", buf[:n])
	}
	show := func(h *testenv.Host, args ...string) string {
		out, _ := h.Command("ip", args...).CombinedOutput()
		return string(out)
	}
	if r := show(a, "route", "show", "proto", Proto); !strings.Contains(r, "10.244.2.0/24 via 10.244.2.0 dev driftless.1") || strings.Count(r, "\n") != 1 {
		t.Fatalf("routes on %s:\n%s", a.Name, r)
	}
	in(a, func() error { return VXLAN{}.Sync(ctx, sa, nil) })
	if r := show(a, "route", "show", "proto", Proto); r != "" {
		t.Errorf("the peer's route stays:\n%s", r)
	}
	if n := show(a, "neigh", "show", "dev", "driftless.1", "nud", "permanent"); n != "" {
		t.Errorf("the peer's neighbour entry stays:\n%s", n)
	}
	if out, _ := a.Command("bridge", "fdb", "show", "dev", "driftless.1").CombinedOutput(); strings.Contains(string(out), VTEPMAC(b.IP).String()) {
		t.Errorf("the peer's forwarding entry stays:\n%s", out)
	}
}
