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

// A StatefulSet replica whose host dies waits for it: its claim is on
// that host, so it stays Pending with the reason instead of starting
// empty elsewhere, and it resumes with its data when the host returns.
func TestStatefulReplicaWaitsForItsNode(t *testing.T) {
	e := newEnv(t)
	app := strings.Replace(statefulSet("db", 2, "1", "Parallel"), "      terminationGracePeriodSeconds: 1\n", `      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: db}}
            topologyKey: kubernetes.io/hostname
`, 1)
	e.work.WriteFile("db.yaml", app)
	e.work.Commit("two db replicas apart")
	e.work.Push()
	_, hosts := startHosts(t, e, 3)

	read := func() *status.State { return branchState(e.url) }
	ref := manifest.Ref{Namespace: "default", Kind: "StatefulSet", Name: "db"}
	var st *status.State
	waitFor(t, "both ordinals ready on two hosts", 120*time.Second, func() (bool, string) {
		st = read()
		p := st.Placements[ref]
		ready := 0
		for _, r := range p.Replicas {
			if r.Node != "" && r.Status != nil && r.Status.Ready {
				ready++
			}
		}
		return ready == 2, fmt.Sprintf("%+v", p.Replicas)
	})
	nodeOf := map[int]string{}
	for _, r := range st.Placements[ref].Replicas {
		nodeOf[r.Index] = r.Node
	}
	// The victim runs an ordinal and does not lead.
	var victim *appHost
	var ordinal int
	for _, h := range hosts {
		for o, n := range nodeOf {
			if n == h.Name && h.Name != st.Cluster.Leader {
				victim, ordinal = h, o
			}
		}
	}
	if victim == nil {
		t.Fatalf("no db host apart from the leader %s: %v", st.Cluster.Leader, nodeOf)
	}
	claim := fmt.Sprintf("data-db-%d", ordinal)
	b := st.Volumes[volumes.ClaimRef("default", claim)]
	if b.Node != victim.Name {
		t.Fatalf("%s bound to %q, its replica on %s", claim, b.Node, victim.Name)
	}
	dataFile := filepath.Join(victim.opts.dataDir, "volumes", b.Path, "boots")

	victim.die(t)
	waitFor(t, "the ordinal Pending, waiting for its volume's node", 90*time.Second, func() (bool, string) {
		for _, r := range read().Placements[ref].Replicas {
			if r.Index == ordinal {
				return r.Node == "" && len(r.Pending) > 0 && strings.Contains(strings.Join(r.Pending, " "), "volume "+claim+" is on node "+victim.Name), fmt.Sprintf("%+v", r)
			}
		}
		return false, "no such ordinal"
	})
	if got := read().Volumes[volumes.ClaimRef("default", claim)]; got.Path != b.Path || got.Node != b.Node {
		t.Fatalf("binding changed while its node is away: %+v, was %+v", got, b)
	}

	// The host returns: the ordinal runs there again with its data.
	victim.cd.Restart(t)
	victim.LinkUp(t)
	victim.agent = startAgent(t, victim.opts)
	waitFor(t, "the ordinal back on its host with its data", 120*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(dataFile)
		want := fmt.Sprintf("db-%d v1\ndb-%d v1\n", ordinal, ordinal)
		for _, r := range read().Placements[ref].Replicas {
			if r.Index == ordinal {
				return string(data) == want && r.Node == victim.Name && r.Status != nil && r.Status.Ready, fmt.Sprintf("%q %+v", data, r)
			}
		}
		return false, string(data)
	})
}
