package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

// The leader killed -9 in the middle of a StatefulSet's rolling update:
// the next leader carries on in order, no ordinal ever runs twice at
// once, no claim is bound twice, and every ordinal ran once per template.
func TestStatefulRolloutSurvivesLeaderKill(t *testing.T) {
	e := newEnv(t)
	names := []string{"node-a", "node-b", "node-c"}
	e.work.WriteFile("db.yaml", statefulSet("db", 3, "1", "OrderedReady"))
	e.work.Commit("db v1")
	e.work.Push()
	opts, agents := startCluster(t, e, names)
	ref := manifest.Ref{Namespace: "default", Kind: "StatefulSet", Name: "db"}
	read := func() *status.State { return branchState(e.url) }
	// Never two running containers of one ordinal, over every node.
	checkOnce := func() string {
		per := map[int]int{}
		for _, n := range names {
			for _, tk := range listTasksIn(t, e.client, ns+"-"+n, "db") {
				var o int
				if _, err := fmt.Sscanf(tk.ID, "db-%d-", &o); err == nil && tk.Status == "running" {
					per[o]++
				}
			}
		}
		for o, c := range per {
			if c > 1 {
				t.Fatalf("ordinal %d runs %d times at once", o, c)
			}
		}
		return fmt.Sprint(per)
	}
	allReady := func(hash string) func() (bool, string) {
		return func() (bool, string) {
			seen := checkOnce()
			p := read().Placements[ref]
			n := 0
			for _, r := range p.Replicas {
				if r.Node != "" && r.Status != nil && r.Status.Ready && (hash == "" || r.SpecHash == hash) && r.SpecHash == p.SpecHash {
					n++
				}
			}
			return n == 3, fmt.Sprintf("%s %+v", seen, p.Replicas)
		}
	}
	waitFor(t, "db v1: three ordinals ready", 120*time.Second, allReady(""))
	st := read()
	v1 := st.Placements[ref].SpecHash
	bound := map[string]volumes.Binding{}
	for r, b := range st.Volumes {
		bound[r.Name] = b
	}
	if len(bound) != 3 {
		t.Fatalf("bindings %+v", st.Volumes)
	}

	e.work.WriteFile("db.yaml", statefulSet("db", 3, "2", "OrderedReady"))
	e.work.Commit("db v2")
	e.work.Push()
	waitFor(t, "the rollout under way", 60*time.Second, func() (bool, string) {
		checkOnce()
		p := read().Placements[ref]
		return p.SpecHash != v1, p.SpecHash
	})
	leader := read().Cluster.Leader
	agents[leader].kill()
	agents[leader] = startAgent(t, opts[leader])
	waitFor(t, "db v2: three ordinals ready", 180*time.Second, allReady(""))
	final := read()
	if final.Placements[ref].SpecHash == v1 {
		t.Fatalf("still v1")
	}
	for r, b := range final.Volumes {
		if was := bound[r.Name]; was.Path != b.Path || was.Node != b.Node {
			t.Fatalf("%s bound again: %+v, was %+v", r.Name, b, was)
		}
		data, err := os.ReadFile(filepath.Join(opts[b.Node].dataDir, "volumes", b.Path, "boots"))
		o := strings.TrimPrefix(r.Name, "data-")
		if want := o + " v1\n" + o + " v2\n"; err != nil || string(data) != want {
			t.Fatalf("%s: boots %q (%v), want %q", r.Name, data, err, want)
		}
	}
}
