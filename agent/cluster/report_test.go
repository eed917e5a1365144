package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

// A restarted agent counts its reports from 1 again; its first report
// must replace everything its previous run sent, however many that was,
// and a late copy of the previous run's report must not come back.
func TestReportIncarnationOrdersBeforeSequence(t *testing.T) {
	c := &Cluster{cfg: Config{NodeName: "leader"}, reports: map[string]Report{}}
	old := Report{Node: "n1", Incarnation: 100, Seq: 50, Replicas: map[string]manifest.ReplicaStatus{"default/Deployment/web/0": {Phase: "Running", PodIP: "10.0.0.5"}}}
	if !c.mergeReport(old) {
		t.Fatal("first report not taken")
	}
	fresh := Report{Node: "n1", Incarnation: 200, Seq: 1, Replicas: map[string]manifest.ReplicaStatus{"default/Deployment/web/0": {Phase: "Running", PodIP: "10.0.0.9"}}}
	if !c.mergeReport(fresh) {
		t.Fatal("restarted agent's first report lost to its previous run's 50th")
	}
	if c.mergeReport(old) {
		t.Fatal("previous run's report replaced the restarted agent's")
	}
	if got := c.Reports()["n1"].Replicas["default/Deployment/web/0"].PodIP; got != "10.0.0.9" {
		t.Fatalf("pod IP %s, want the new run's", got)
	}
	next := fresh
	next.Seq = 2
	if !c.mergeReport(next) || c.mergeReport(fresh) {
		t.Fatal("sequence order within one incarnation")
	}
}

// A node that restarts is seen with its new report, end to end, even
// though its previous run sent more reports than the new one.
func TestRestartedNodeReportSupersedes(t *testing.T) {
	a := start(t, "node-a", nil)
	b := start(t, "node-b", []string{a.LocalAddr()})
	eventually(t, "2 alive", 10*time.Second, func() bool { return alive(a) == 2 && alive(b) == 2 })
	for i := 0; i < 20; i++ {
		b.SetReport(map[string]manifest.ReplicaStatus{"default/Deployment/web/0": {Phase: "Running", Message: fmt.Sprint(i)}}, "")
	}
	eventually(t, "last report of the first run", 10*time.Second, func() bool {
		return a.Reports()["node-b"].Replicas["default/Deployment/web/0"].Message == "19"
	})
	addr := b.LocalAddr()
	b.Shutdown()
	eventually(t, "node-b gone", 10*time.Second, func() bool { return alive(a) == 1 })
	b2 := start(t, "node-b", []string{a.LocalAddr()}, func(cfg *Config) { cfg.BindAddr = addr })
	b2.SetReport(map[string]manifest.ReplicaStatus{"default/Deployment/web/0": {Phase: "Running", Message: "new run"}}, "")
	eventually(t, "restarted node's first report", 15*time.Second, func() bool {
		return a.Reports()["node-b"].Replicas["default/Deployment/web/0"].Message == "new run"
	})
}

// Members is read while nodes join, update their metadata and leave; the
// race detector checks that nothing reads memberlist's nodes unlocked.
func TestMembersWhileMembershipChanges(t *testing.T) {
	a := start(t, "node-a", nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, m := range a.Members() {
				_ = m.Addr + m.Meta.Version
			}
			a.SetReport(map[string]manifest.ReplicaStatus{}, "")
		}
	}()
	for i := 0; i < 3; i++ {
		b := start(t, fmt.Sprintf("node-b%d", i), []string{a.LocalAddr()})
		eventually(t, "joined", 10*time.Second, func() bool { return alive(a) == 2 })
		if err := b.UpdateMeta(NodeMeta{Version: "v2"}); err != nil {
			t.Fatal(err)
		}
		_ = b.Leave(time.Second)
		b.Shutdown()
		eventually(t, "left", 10*time.Second, func() bool { return alive(a) == 1 })
	}
	close(stop)
	wg.Wait()
}
