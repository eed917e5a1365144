package manifest

import "testing"

func TestRebound(t *testing.T) {
	p := func(hash string, nodes ...string) Placement {
		out := Placement{SpecHash: hash}
		for i, n := range nodes {
			out.Replicas = append(out.Replicas, ReplicaPlacement{Index: i, Node: n})
		}
		return out
	}
	cases := []struct {
		name string
		o, n Placement
		want bool
	}{
		{"same", p("h", "a", "b"), p("h", "a", "b"), false},
		{"swap", p("h", "a", "b"), p("h", "b", "a"), true},
		{"moved", p("h", "a", "b"), p("h", "a", "c"), true},
		{"scaled", p("h", "a"), p("h", "a", "b"), true},
		{"pending placed", p("h", ""), p("h", "a"), true},
		{"new template", p("h", "a"), p("h2", "a"), true},
	}
	for _, c := range cases {
		if got := Rebound(c.o, c.n); got != c.want {
			t.Errorf("%s: Rebound = %v, want %v", c.name, got, c.want)
		}
	}
}
