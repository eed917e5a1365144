package leader

import (
	"net/netip"
	"strings"
	"testing"

	"driftless.dev/driftless/status"
)

func TestAllocatePodCIDRs(t *testing.T) {
	pn := PodNetwork{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/22"), NodeBits: 24}
	files := map[string]status.NodeStatus{
		"b": {Name: "b"}, "a": {Name: "a"},
		"c": {Name: "c", PodCIDR: "10.244.0.0/24"}, // kept, though "a" sorts first
	}
	allocatePodCIDRs(files, pn)
	if files["c"].PodCIDR != "10.244.0.0/24" || files["a"].PodCIDR != "10.244.1.0/24" || files["b"].PodCIDR != "10.244.2.0/24" {
		t.Fatalf("%+v", files)
	}
	// Two more nodes than subnets: the last waits with the reason,
	// the others keep theirs.
	files["d"] = status.NodeStatus{Name: "d"}
	files["e"] = status.NodeStatus{Name: "e"}
	allocatePodCIDRs(files, pn)
	if files["d"].PodCIDR != "10.244.3.0/24" || files["e"].PodCIDR != "" || !strings.Contains(files["e"].PodCIDRPending, "no free /24") {
		t.Fatalf("%+v", files)
	}
	if files["a"].PodCIDR != "10.244.1.0/24" {
		t.Fatal("an existing node's subnet moved")
	}
	// A node removed from the branch frees its subnet for the waiting one.
	delete(files, "a")
	allocatePodCIDRs(files, pn)
	if files["e"].PodCIDR != "10.244.1.0/24" || files["e"].PodCIDRPending != "" {
		t.Fatalf("%+v", files["e"])
	}
	// Without a cluster CIDR nothing is given.
	none := map[string]status.NodeStatus{"x": {Name: "x"}}
	allocatePodCIDRs(none, PodNetwork{})
	if none["x"].PodCIDR != "" {
		t.Fatal("no cluster CIDR, no subnet")
	}
}
