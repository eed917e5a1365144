package podnet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// VXLAN joins the nodes' pod subnets over a VXLAN device, as flannel's
// vxlan backend does, for nodes that are not on one network segment:
// each node's device has the first address of its subnet and a MAC
// derived from its node address, so that every peer's entries (route,
// neighbour, forwarding) follow from what the status branch already
// holds (its subnet and address), with nothing more to publish.
type VXLAN struct {
	// Device is the VXLAN device's name (default driftless.1), VNI its
	// network id (1) and Port its UDP port (4789).
	Device string
	VNI    int
	Port   int
}

func (v VXLAN) dev() string {
	if v.Device == "" {
		return "driftless.1"
	}
	return v.Device
}

// VTEPMAC is the MAC of the VXLAN device of the node at addr: locally
// administered (0a:58, as Kubernetes' own prefix), then the address.
func VTEPMAC(addr netip.Addr) net.HardwareAddr {
	a := addr.As4()
	return net.HardwareAddr{0x0a, 0x58, a[0], a[1], a[2], a[3]}
}

// vtepIP is a subnet's first address: the VXLAN device's own.
func vtepIP(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr() }

// Sync makes the device exist with this node's address and MAC, and the
// entries toward each peer exactly those of peers: a route to its subnet
// through its device address, a permanent neighbour entry for that
// address and a forwarding entry sending its MAC to its node address.
// Entries of peers that left are removed; nothing else is touched.
func (v VXLAN) Sync(ctx context.Context, self Route, peers []Route) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !self.Dst.IsValid() || !self.Via.IsValid() {
		return nil // no subnet yet
	}
	if err := v.ensureDevice(ctx, self); err != nil {
		return err
	}
	dev := v.dev()
	var want []Route
	for _, p := range peers {
		want = append(want, Route{Dst: p.Dst, Via: vtepIP(p.Dst), dev: dev})
	}
	// Neighbour and forwarding entries first, so that a new route never
	// sends into the void.
	var neigh, fdb strings.Builder
	wantMAC := map[string]netip.Addr{}
	wantNeigh := map[netip.Addr]bool{}
	for _, p := range peers {
		mac := VTEPMAC(p.Via).String()
		wantMAC[mac] = p.Via
		wantNeigh[vtepIP(p.Dst)] = true
		fmt.Fprintf(&neigh, "neigh replace %s lladdr %s dev %s nud permanent\n", vtepIP(p.Dst), mac, dev)
		fmt.Fprintf(&fdb, "fdb replace %s dev %s dst %s self permanent\n", mac, dev, p.Via)
	}
	haveNeigh, haveFDB, err := v.entries(ctx)
	if err != nil {
		return err
	}
	for ip := range haveNeigh {
		if !wantNeigh[ip] {
			fmt.Fprintf(&neigh, "neigh del %s dev %s\n", ip, dev)
		}
	}
	for mac := range haveFDB {
		if _, ok := wantMAC[mac]; !ok {
			fmt.Fprintf(&fdb, "fdb del %s dev %s self\n", mac, dev)
		}
	}
	if err := batch(ctx, "bridge", fdb.String()); err != nil {
		return err
	}
	if err := batch(ctx, "ip", neigh.String()); err != nil {
		return err
	}
	return syncRoutes(ctx, want)
}

func (v VXLAN) ensureDevice(ctx context.Context, self Route) error {
	dev := v.dev()
	vni, port := v.VNI, v.Port
	if vni == 0 {
		vni = 1
	}
	if port == 0 {
		port = 4789
	}
	mac := VTEPMAC(self.Via).String()
	if err := exec.CommandContext(ctx, "ip", "link", "show", dev).Run(); err != nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "add", dev, "address", mac, "type", "vxlan", "id", fmt.Sprint(vni),
			"local", self.Via.String(), "dstport", fmt.Sprint(port), "nolearning").CombinedOutput(); err != nil {
			return fmt.Errorf("pod network: create %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "link set %s address %s\n", dev, mac)
	fmt.Fprintf(&b, "addr replace %s/32 dev %s\n", vtepIP(self.Dst), dev)
	fmt.Fprintf(&b, "link set %s up\n", dev)
	return batch(ctx, "ip", b.String())
}

// entries lists the device's permanent neighbour entries and its
// forwarding entries with a destination.
func (v VXLAN) entries(ctx context.Context) (map[netip.Addr]bool, map[string]bool, error) {
	neigh := map[netip.Addr]bool{}
	out, err := exec.CommandContext(ctx, "ip", "-4", "neigh", "show", "dev", v.dev(), "nud", "permanent").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("pod network: ip neigh show: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			if ip, err := netip.ParseAddr(f[0]); err == nil {
				neigh[ip] = true
			}
		}
	}
	fdb := map[string]bool{}
	out, err = exec.CommandContext(ctx, "bridge", "fdb", "show", "dev", v.dev()).Output()
	if err != nil {
		return nil, nil, fmt.Errorf("pod network: bridge fdb show: %w", err)
	}
	sc = bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 2 && strings.Contains(sc.Text(), " dst ") && strings.HasPrefix(f[0], "0a:58:") {
			fdb[f[0]] = true
		}
	}
	return neigh, fdb, nil
}

// batch runs tool -batch - with the commands (nothing when empty).
func batch(ctx context.Context, tool, cmds string) error {
	if cmds == "" {
		return nil
	}
	cmd := exec.CommandContext(ctx, tool, "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pod network: %s -batch: %w: %s", tool, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
