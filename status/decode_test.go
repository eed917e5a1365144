package status

import (
	"context"
	"fmt"
	"testing"

	"driftless.dev/driftless/internal/testenv"
)

func fleetNodes(n, round int) Mutate {
	return func(cur *State) (*State, *Message, error) {
		if cur.Nodes == nil {
			cur.Nodes = map[string]NodeStatus{}
		}
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("node-%02d", i)
			ns := NodeStatus{Name: name, Labels: map[string]string{"zone": "a", "kubernetes.io/hostname": name}, State: NodeAlive,
				Capacity: map[string]string{"cpu": "2", "memory": "8Gi"}, DesiredCommitReached: fmt.Sprintf("%040d", 0)}
			if i == round%n {
				ns.DesiredCommitReached = fmt.Sprintf("%040d", round)
			}
			if _, ok := cur.Nodes[name]; !ok || i == round%n {
				cur.Nodes[name] = ns
			}
		}
		return cur, &Message{Summary: fmt.Sprintf("round %d", round)}, nil
	}
}

// Reads keep the JSON of unchanged files, never the decoded values: a
// State changed by its caller does not leak into the next read, and a
// changed file is read anew.
func TestReadsShareNothing(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	s := open(t, url)
	mustUpdate(t, s, fleetNodes(5, 0))
	a, err := s.local()
	if err != nil {
		t.Fatal(err)
	}
	a.Nodes["node-01"].Labels["zone"] = "changed by a caller"
	mustUpdate(t, s, fleetNodes(5, 3))
	b, err := s.local()
	if err != nil {
		t.Fatal(err)
	}
	if z := b.Nodes["node-01"].Labels["zone"]; z != "a" {
		t.Fatalf("a caller's change reached the next read: zone %q", z)
	}
	if got := b.Nodes["node-03"].DesiredCommitReached; got != fmt.Sprintf("%040d", 3) {
		t.Fatalf("the changed file was not read anew: %s", got)
	}
	// The same as a fresh store reads it.
	other := open(t, url)
	c, err := other.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Nodes) != fmt.Sprint(b.Nodes) {
		t.Fatalf("cached read differs from a fresh one:\n%v\n%v", b.Nodes, c.Nodes)
	}
}

// BenchmarkReadStatus reads a 50-node status branch after each commit
// (one node file changed), as a follower does, keeping the JSON of the
// unchanged files, side by side with decoding every file's YAML.
func BenchmarkReadStatus(b *testing.B) {
	_, url := testenv.NewBareRepo(b)
	s, err := Open(context.Background(), Config{URL: url, Dir: b.TempDir(), AuthorName: "driftless node-a"})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := s.Update(context.Background(), fleetNodes(50, 0)); err != nil {
		b.Fatal(err)
	}
	round := 0
	for _, mode := range []string{"changed-files", "every-file"} {
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				round++
				if _, _, err := s.Update(context.Background(), fleetNodes(50, round)); err != nil {
					b.Fatal(err)
				}
				if mode == "every-file" {
					s.decoded = nil
				}
				b.StartTimer()
				if _, err := s.local(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
