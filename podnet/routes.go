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

// Route sends a node's pod subnet through its address.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Routes keeps this node's routes to the other nodes' subnets.
type Routes struct{}

// Sync makes the routes marked Proto exactly want: missing ones added,
// changed ones replaced, those of nodes that left removed.
func (Routes) Sync(ctx context.Context, want []Route) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	have, err := List(ctx)
	if err != nil {
		return err
	}
	keep := map[netip.Prefix]netip.Addr{}
	for _, r := range want {
		keep[r.Dst] = r.Via
	}
	var batch strings.Builder
	for _, r := range have {
		if via, ok := keep[r.Dst]; !ok {
			fmt.Fprintf(&batch, "route del %s proto %s\n", r.Dst, Proto)
		} else if via == r.Via {
			delete(keep, r.Dst)
		}
	}
	dsts := make([]netip.Prefix, 0, len(keep))
	for d := range keep {
		dsts = append(dsts, d)
	}
	sort.Slice(dsts, func(i, j int) bool { return dsts[i].String() < dsts[j].String() })
	for _, d := range dsts {
		fmt.Fprintf(&batch, "route replace %s via %s proto %s\n", d, keep[d], Proto)
	}
	if batch.Len() == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, "ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pod routes: ip -batch: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
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
		rs = append(rs, Route{Dst: dst, Via: via})
	}
	return rs, nil
}
