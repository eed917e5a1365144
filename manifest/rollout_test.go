package manifest

import (
	"reflect"
	"strings"
	"testing"
)

const rollingDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 10
  minReadySeconds: 5
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: "30%"}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - {name: main, image: busybox}
`

const rollingDaemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 2}
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
        - {name: main, image: busybox}
`

func TestRolloutDefaultsAndBounds(t *testing.T) {
	set, probs := load(t, "apps/web.yaml", rollingDeployment)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	ro := set.Workloads[0].Rollout
	if ro == nil || ro.Strategy != StrategyRollingUpdate || ro.MinReadySeconds != 5 || ro.ProgressDeadlineSeconds != 600 {
		t.Fatalf("rollout %+v", ro)
	}
	// 30% of 10 surges 3; 1 unavailable.
	if s, u := ro.Bounds(10, false); s != 3 || u != 1 {
		t.Fatalf("bounds %d %d", s, u)
	}
	// Kubernetes defaults: 25% each, surge rounds up, unavailable down.
	def := strings.Replace(rollingDeployment, "  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 1, maxSurge: \"30%\"}\n", "", 1)
	set, probs = load(t, "apps/web.yaml", def)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	for _, c := range []struct{ n, s, u int }{{10, 3, 2}, {4, 1, 1}, {1, 1, 0}, {3, 1, 0}} {
		if s, u := set.Workloads[0].Rollout.Bounds(c.n, false); s != c.s || u != c.u {
			t.Fatalf("25%%/25%% of %d: surge %d unavailable %d, want %d %d", c.n, s, u, c.s, c.u)
		}
	}
	set, probs = load(t, "apps/agent.yaml", rollingDaemonSet)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if ro := set.Workloads[0].Rollout; ro.Strategy != StrategyRollingUpdate || ro.MaxUnavailable.IntVal != 2 || ro.MaxSurge.String() != "0" {
		t.Fatalf("daemonset rollout %+v", ro)
	}
}

func TestRolloutValidate(t *testing.T) {
	cases := []struct {
		name, doc, old, new string
		want                []string
	}{
		{"both zero", rollingDeployment, `{maxUnavailable: 1, maxSurge: "30%"}`, `{maxUnavailable: 0, maxSurge: "0%"}`,
			[]string{`apps/web.yaml:10: spec.strategy.rollingUpdate.maxUnavailable: "0": may not be 0 when maxSurge is 0`}},
		{"negative", rollingDeployment, `maxUnavailable: 1,`, `maxUnavailable: -1,`,
			[]string{`apps/web.yaml:10: spec.strategy.rollingUpdate.maxUnavailable: "-1": must be >= 0`}},
		{"over 100%", rollingDeployment, `maxUnavailable: 1,`, `maxUnavailable: "150%",`,
			[]string{`apps/web.yaml:10: spec.strategy.rollingUpdate.maxUnavailable: "150%": must not be greater than 100%`}},
		{"not a percentage", rollingDeployment, `maxSurge: "30%"`, `maxSurge: "many"`,
			[]string{`apps/web.yaml:10: spec.strategy.rollingUpdate.maxSurge: "many": must be an integer or a percentage`}},
		{"recreate with rollingUpdate", rollingDeployment, "type: RollingUpdate", "type: Recreate",
			[]string{`apps/web.yaml:10: spec.strategy.rollingUpdate: may not be set when strategy type is Recreate`}},
		{"deadline not above minReady", rollingDeployment, "minReadySeconds: 5", "minReadySeconds: 5\n  progressDeadlineSeconds: 5",
			[]string{`apps/web.yaml:8: spec.progressDeadlineSeconds: "5": must be greater than minReadySeconds`}},
		{"daemonset surge", rollingDaemonSet, "{maxUnavailable: 2}", "{maxUnavailable: 0, maxSurge: 1}",
			[]string{`apps/web.yaml:8: spec.updateStrategy.rollingUpdate.maxSurge: a value other than 0 is not supported by driftless yet`}},
		{"daemonset both zero", rollingDaemonSet, "{maxUnavailable: 2}", "{maxUnavailable: 0}",
			[]string{`apps/web.yaml:8: spec.updateStrategy.rollingUpdate.maxUnavailable: "0": may not be 0 when maxSurge is 0`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(tc.doc, tc.old, tc.new, 1)
			if in == tc.doc {
				t.Fatalf("%q not in the manifest", tc.old)
			}
			_, got := load(t, "apps/web.yaml", in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
