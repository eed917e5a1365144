package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

// view is a fixed gossip view: which nodes this agent believes alive.
type view struct{ members []cluster.Member }

func (v view) Members() []cluster.Member                           { return v.members }
func (v view) SetReport(map[string]manifest.ReplicaStatus, string) {}
func (v view) Reports() map[string]cluster.Report                  { return nil }
func (v view) Hint(cluster.Hint)                                   {}
func (v view) Hints() <-chan cluster.Hint                          { return nil }
func (v view) Changes() <-chan struct{}                            { return nil }
func aliveView(all []string, alive ...string) view {
	var ms []cluster.Member
	for _, n := range all {
		m := cluster.Member{Name: n}
		for _, a := range alive {
			m.Alive = m.Alive || a == n
		}
		ms = append(ms, m)
	}
	return view{ms}
}

func openStatus(t *testing.T, url, node string) *status.Store {
	t.Helper()
	st, err := status.Open(context.Background(), status.Config{URL: url, Dir: filepath.Join(t.TempDir(), "status"),
		AuthorName: "driftless " + node})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Two nodes whose gossip views differ (each sees the other dead) both
// believe they are the candidate when the old leader dies. Git settles it:
// exactly one claims the next term, the other follows it instead of
// claiming the one after, and the history stays linear. Once gossip
// converges the winner keeps leading even if its name is not the lowest.
func TestRacingCandidatesOneTerm(t *testing.T) {
	testenv.Require(t, "git")
	_, url := testenv.NewBareRepo(t)
	all := []string{"node-0", "node-a", "node-b", "node-c", "node-d"}
	ctx := context.Background()

	// The cluster as committed: node-0 leads term 1, five nodes known.
	seed := openStatus(t, url, "node-0")
	if _, _, err := seed.Update(ctx, func(cur *status.State) (*status.State, *status.Message, error) {
		next := cur.Clone()
		next.Cluster.Leader, next.Cluster.Term, next.Cluster.SchemaVersion = "node-0", 1, status.SchemaVersion
		next.Nodes = map[string]status.NodeStatus{}
		for _, n := range all {
			next.Nodes[n] = status.NodeStatus{SchemaVersion: status.SchemaVersion, Name: n, State: "alive"}
		}
		return next, &status.Message{Summary: "seed", Leader: "node-0", Term: 1}, nil
	}); err != nil {
		t.Fatal(err)
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newAgent := func(node string, v view) *Agent {
		a := New(Config{Node: node}, quiet, Deps{Status: openStatus(t, url, node), Cluster: v})
		a.state.LastSeen = "-" // nothing desired yet; skip the desired branch
		a.readStatus(ctx)
		return a
	}
	// node-a sees node-b dead, node-b sees node-a dead: both are the
	// lowest alive name in their own view, both see a majority (3 of 5).
	a := newAgent("node-a", aliveView(all, "node-a", "node-c", "node-d"))
	b := newAgent("node-b", aliveView(all, "node-b", "node-c", "node-d"))
	if !a.isLeader() || !b.isLeader() {
		t.Fatalf("both should believe they are the candidate: a=%v b=%v", a.isLeader(), b.isLeader())
	}

	for round := 0; round < 5; round++ {
		if round == 1 {
			// Gossip converges: both see everyone but the old leader.
			a.deps.Cluster = aliveView(all, "node-a", "node-b", "node-c", "node-d")
			b.deps.Cluster = aliveView(all, "node-a", "node-b", "node-c", "node-d")
		}
		var wg sync.WaitGroup
		for _, ag := range []*Agent{a, b} {
			wg.Add(1)
			go func(ag *Agent) {
				defer wg.Done()
				if ag.isLeader() {
					ag.writeStatus(ctx)
				}
			}(ag)
		}
		wg.Wait()
		a.readStatus(ctx)
		b.readStatus(ctx)
	}

	final, err := seed.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if final.Cluster.Term != 2 {
		t.Fatalf("term %d after the race, want 2 (one claim, no outbidding)", final.Cluster.Term)
	}
	winner := final.Cluster.Leader
	if winner != "node-a" && winner != "node-b" {
		t.Fatalf("leader %q", winner)
	}
	if a.isLeader() == b.isLeader() {
		t.Fatalf("after the race exactly one should lead: a=%v b=%v", a.isLeader(), b.isLeader())
	}

	// Linear history, one leader per term.
	dir := t.TempDir()
	testenv.Git(t, dir, "clone", "-q", "--branch", "driftless/status", url, "c")
	log := testenv.Git(t, filepath.Join(dir, "c"), "log", "--format=%p|%(trailers:key=Leader,valueonly,separator=)|%(trailers:key=Term,valueonly,separator=)")
	leaders := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		f := strings.Split(line, "|")
		if strings.Contains(f[0], " ") {
			t.Fatalf("merge commit in the status history:\n%s", log)
		}
		if prev, ok := leaders[f[2]]; ok && prev != f[1] {
			t.Fatalf("term %s has two leaders (%s, %s):\n%s", f[2], prev, f[1], log)
		}
		leaders[f[2]] = f[1]
	}
	if fmt.Sprint(leaders["2"]) != winner {
		t.Fatalf("term 2 leader in history %q, branch says %q:\n%s", leaders["2"], winner, log)
	}
}
