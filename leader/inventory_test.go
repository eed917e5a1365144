package leader

import (
	"fmt"
	"testing"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

// A Node policy with spec.removed deletes a node that is gone from the
// status branch; a live node is never removed, whatever the policy says.
func TestRemovedNodePolicy(t *testing.T) {
	files := map[string]status.NodeStatus{
		"gone":  {Name: "gone", State: "dead"},
		"live":  {Name: "live", State: "alive"},
		"other": {Name: "other", State: "dead"},
	}
	pol := func(name string) manifest.Node {
		n := manifest.Node{}
		n.Metadata.Name = name
		n.Spec.Removed = true
		return n
	}
	nodes := SchedulerNodes(files, []manifest.Node{pol("gone"), pol("live")}, nil)
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	if fmt.Sprint(names) != "[live other]" {
		t.Fatalf("scheduler nodes %v, want [live other]", names)
	}
	if _, ok := files["gone"]; ok {
		t.Fatalf("removed node still in nodes/: %v", files)
	}
	if files["live"].State != "alive" || files["other"].State != "dead" {
		t.Fatalf("files: %v", files)
	}
}

func TestQuantities(t *testing.T) {
	got := quantities(map[string]int64{"cpu": 1500, "memory": 256 << 20 * 1000})
	if got["cpu"] != "1500m" || got["memory"] != "256Mi" {
		t.Fatalf("quantities: %v", got)
	}
	if quantities(nil) != nil {
		t.Fatal("empty allocation should be nil")
	}
}
