package leader

import (
	"fmt"
	"net/netip"
	"sort"

	"driftless.dev/driftless/status"
)

// PodNetwork is the cluster's pod address range, cut into one subnet
// per node.
type PodNetwork struct {
	// ClusterCIDR is --cluster-cidr; invalid: no per-node subnets.
	ClusterCIDR netip.Prefix
	// NodeBits is the prefix length of each node's subnet (24).
	NodeBits int
}

// allocatePodCIDRs gives each node of files without one the first free
// subnet of the cluster CIDR, in node name order; a node keeps its
// subnet while it is on the branch (dead ones too: a node that comes
// back finds its replicas' addresses routed as before). When none is
// free the node waits, with the reason in PodCIDRPending.
func allocatePodCIDRs(files map[string]status.NodeStatus, pn PodNetwork) {
	if !pn.ClusterCIDR.IsValid() || pn.NodeBits < pn.ClusterCIDR.Bits() || pn.NodeBits > 30 {
		return
	}
	used := map[netip.Prefix]bool{}
	names := make([]string, 0, len(files))
	for name, ns := range files {
		names = append(names, name)
		if p, err := netip.ParsePrefix(ns.PodCIDR); err == nil && p.Bits() == pn.NodeBits && pn.ClusterCIDR.Contains(p.Addr()) && !used[p] {
			used[p] = true
			continue
		}
		ns.PodCIDR = ""
		files[name] = ns
	}
	sort.Strings(names)
	count := 1 << (pn.NodeBits - pn.ClusterCIDR.Bits())
	step := uint32(1) << (32 - pn.NodeBits)
	base4 := pn.ClusterCIDR.Masked().Addr().As4()
	base := uint32(base4[0])<<24 | uint32(base4[1])<<16 | uint32(base4[2])<<8 | uint32(base4[3])
	next := 0
	for _, name := range names {
		ns := files[name]
		if ns.PodCIDR != "" {
			ns.PodCIDRPending = ""
			files[name] = ns
			continue
		}
		var got netip.Prefix
		for ; next < count; next++ {
			v := base + uint32(next)*step
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), pn.NodeBits)
			if !used[p] {
				got = p
				used[p] = true
				break
			}
		}
		if got.IsValid() {
			ns.PodCIDR, ns.PodCIDRPending = got.String(), ""
		} else {
			ns.PodCIDRPending = fmt.Sprintf("the cluster CIDR %s has no free /%d subnet left for this node", pn.ClusterCIDR, pn.NodeBits)
		}
		files[name] = ns
	}
}
