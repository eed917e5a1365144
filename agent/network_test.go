package agent

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/netproxy"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/sources"
)

type fakeProxy struct {
	fail  atomic.Bool
	syncs atomic.Int32
	last  atomic.Pointer[[]services.Record]
}

func (f *fakeProxy) Sync(_ context.Context, _ netproxy.Config, recs []services.Record) error {
	f.syncs.Add(1)
	f.last.Store(&recs)
	if f.fail.Load() {
		return errors.New("iptables-restore: Couldn't load match `statistic'")
	}
	return nil
}

const svcYAML = "{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {selector: {app: web}, ports: [{port: 80}]}}\n"

// The network loop programs the committed Services; when the node's
// rules cannot be installed the node is degraded and its running
// replicas say why, and both clear once the rules go in.
func TestNetworkLoopReportsFailingRules(t *testing.T) {
	src := &fakeSource{head: sources.Revision{Commit: "c1"}, files: map[string][]manifest.File{"c1": {
		{Path: "web.yaml", Data: []byte(webYAML)}, {Path: "svc.yaml", Data: []byte(svcYAML)}}}}
	a, _ := standalone(t, src)
	proxy := &fakeProxy{}
	proxy.fail.Store(true)
	a.deps.Proxy = proxy
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.networkLoop(ctx)
	a.intakeWork(ctx, true)
	a.pass(ctx)
	testenv.Eventually(t, "the Service handed to the proxy", 5*time.Second, func() (bool, string) {
		l := proxy.last.Load()
		return l != nil && len(*l) == 1 && (*l)[0].Service.Name == "web", ""
	})
	testenv.Eventually(t, "the node degraded", 5*time.Second, func() (bool, string) {
		return slices.Contains(a.Snapshot().Degraded, "services"), ""
	})
	obs := map[reconcile.ReplicaKey]manifest.ReplicaStatus{{Index: 0}: {Phase: manifest.PhaseRunning, Ready: true}, {Index: 1}: {Phase: manifest.PhasePending, Reason: "ErrImagePull"}}
	got := withNetworkProblem(obs, a.netProblem.Load())
	if got[reconcile.ReplicaKey{Index: 0}].Reason != ReasonNodeNetwork || got[reconcile.ReplicaKey{Index: 1}].Reason != "ErrImagePull" {
		t.Fatalf("running replicas must say why, others keep theirs: %+v", got)
	}
	if obs[reconcile.ReplicaKey{Index: 0}].Reason != "" {
		t.Fatal("the observation itself must not change")
	}
	proxy.fail.Store(false)
	a.netIn.Put(a.netInputNow())
	testenv.Eventually(t, "the node no longer degraded", 10*time.Second, func() (bool, string) {
		p := a.netProblem.Load()
		return !slices.Contains(a.Snapshot().Degraded, "services") && p != nil && *p == "", ""
	})
}
