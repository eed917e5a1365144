// Package podnet joins the nodes' pod subnets into one network, as
// flannel's host-gw backend does on a flat network: every node routes
// each other node's subnet through that node's address, so that replicas
// reach each other across nodes by their own addresses, without NAT.
// Routes are applied as one `ip -batch` per change and marked with a
// protocol number of their own, so that the set is compared and
// corrected whole (level-triggered) and nothing else is touched.
package podnet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Proto marks the routes driftless owns (ip route ... proto 203).
const Proto = "203"

// Route is a node's pod subnet and its node address (Via); as a kernel
// route, the subnet through Via (on dev when set, onlink).
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
	dev string
}

// Routes is the host-gw backend: this node routes each other node's
// subnet through that node's address (the nodes on one segment).
type Routes struct{}

// Sync makes the routes marked Proto exactly peers: missing ones added,
// changed ones replaced, those of nodes that left removed. self is not
// needed (the node's own subnet is on its bridge).
func (Routes) Sync(ctx context.Context, self Route, peers []Route) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return syncRoutes(ctx, peers)
}

// syncRoutes makes the routes marked Proto exactly want.
func syncRoutes(ctx context.Context, want []Route) error {
	have, err := List(ctx)
	if err != nil {
		return err
	}
	keep := map[netip.Prefix]Route{}
	for _, r := range want {
		keep[r.Dst] = r
	}
	var b strings.Builder
	for _, r := range have {
		if w, ok := keep[r.Dst]; !ok {
			fmt.Fprintf(&b, "route del %s proto %s\n", r.Dst, Proto)
		} else if w.Via == r.Via && (w.dev == "" || w.dev == r.dev) {
			delete(keep, r.Dst)
		}
	}
	dsts := make([]netip.Prefix, 0, len(keep))
	for d := range keep {
		dsts = append(dsts, d)
	}
	sort.Slice(dsts, func(i, j int) bool { return dsts[i].String() < dsts[j].String() })
	for _, d := range dsts {
		r := keep[d]
		if r.dev != "" {
			fmt.Fprintf(&b, "route replace %s via %s dev %s onlink proto %s\n", d, r.Via, r.dev, Proto)
		} else {
			fmt.Fprintf(&b, "route replace %s via %s proto %s\n", d, r.Via, Proto)
		}
	}
	return batch(ctx, "ip", b.String())
}

// List returns the routes marked Proto.
func List(ctx context.Context) ([]Route, error) {
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show", "proto", Proto).Output()
	if err != nil {
		return nil, fmt.Errorf("pod routes: ip route show: %w", err)
	}
	var rs []Route
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[1] != "via" {
			continue
		}
		dst, err1 := netip.ParsePrefix(f[0])
		via, err2 := netip.ParseAddr(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		r := Route{Dst: dst, Via: via}
		if len(f) > 4 && f[3] == "dev" {
			r.dev = f[4]
		}
		rs = append(rs, r)
	}
	return rs, nil
}
