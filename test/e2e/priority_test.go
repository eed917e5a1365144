package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A replica of a higher priority that fits nowhere takes the place of a
// lower one on a real node: the victim's container stops, the new one
// runs, and the status commit says who was preempted for whom.
func TestPreemptionOnNode(t *testing.T) {
	e := newEnv(t)
	withCPU := func(name, class, cpu string) string {
		d := deployment(name, 1, trapSleep)
		d = strings.Replace(d, "      terminationGracePeriodSeconds: 1\n", "      terminationGracePeriodSeconds: 1\n"+class, 1)
		return d + fmt.Sprintf("          resources: {requests: {cpu: %s}}\n", cpu)
	}
	e.work.WriteFile("batch.yaml", withCPU("batch", "", "1500m"))
	e.work.Commit("a batch Deployment taking most of the node")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.extra = append(o.extra, "--capacity", "cpu=2")
	startAgent(t, o)
	waitFor(t, "batch running", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "batch")) == 1, ""
	})

	e.work.WriteFile("api.yaml", `apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: serving}
value: 100000
---
`+withCPU("api", "      priorityClassName: serving\n", "1"))
	e.work.Commit("a serving Deployment of a higher priority")
	e.work.Push()
	waitFor(t, "api running, batch stopped", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "api")) == 1 && running(listTasks(t, e.client, "batch")) == 0,
			fmt.Sprint(listTasks(t, e.client, "api"), listTasks(t, e.client, "batch"))
	})
	log := gitOut(t, e.work.Dir, "log", "--format=%B", "origin/driftless/status")
	if !strings.Contains(log, "preempt default/batch[0] on node-1: preempted by default/api[0] (priority 100000 > 0) on node-1") {
		t.Fatalf("no preemption in the status history:\n%s", log)
	}
	p, _ := statusFile(t, e.work.Dir, "placements/default/Deployment.batch.yaml")
	// Afterwards it waits as any replica that fits nowhere.
	if len(p.Replicas) != 1 || p.Replicas[0].Node != "" || !strings.Contains(strings.Join(p.Replicas[0].Pending, " "), "insufficient cpu") {
		t.Fatalf("batch placement: %+v", p.Replicas)
	}
}
