package jobs

import (
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
)

const placeDocs = `apiVersion: batch/v1
kind: Job
metadata: {name: batch}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/10 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: main, image: busybox}]
`

// Place ties the controllers to the scheduler: Job records and finished
// replicas survive scheduling, CronJob runs become Jobs with their owner.
func TestPlaceJobsAndCronRuns(t *testing.T) {
	set, err := manifest.Load([]manifest.File{{Path: "j.yaml", Data: []byte(placeDocs)}})
	if err != nil {
		t.Fatal(err)
	}
	nodes := []scheduler.Node{{Name: "a", Alive: true}, {Name: "b", Alive: true}}
	in := Input{Set: set, DesiredCommit: "c1", Nodes: nodes, Now: time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)}
	batch := manifest.Ref{Namespace: "default", Kind: "Job", Name: "batch"}
	tick := manifest.Ref{Namespace: "default", Kind: "CronJob", Name: "tick"}

	out, wake := Place(in)
	if p := out[batch]; len(p.Replicas) != 2 || p.Job == nil || p.Job.Active != 2 || p.Replicas[0].Node == p.Replicas[1].Node {
		t.Fatalf("batch %+v", p)
	}
	if p := out[tick]; p.CronJob == nil || len(p.Replicas) != 0 || len(out) != 2 {
		t.Fatalf("tick %+v, %d placements", p, len(out))
	}
	if want := time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC); !wake.Equal(want) {
		t.Errorf("wake %v, want the next schedule time %v", wake, want)
	}

	// Replica 0 succeeds; the leader is then away until 12:47: one run,
	// for 12:40.
	p := out[batch]
	p.Replicas[0].Status = &manifest.ReplicaStatus{Phase: manifest.PhaseSucceeded}
	out[batch] = p
	in.Current, in.Now = out, time.Date(2026, 3, 1, 12, 47, 0, 0, time.UTC)
	out, _ = Place(in)
	b := out[batch]
	if b.Job.Succeeded != 1 || len(b.Replicas) != 3 || b.Replicas[0].Status == nil || b.Replicas[0].Status.Phase != manifest.PhaseSucceeded {
		t.Fatalf("batch after one success: %+v %+v", b.Job, b.Replicas)
	}
	if b.Replicas[1].Node != p.Replicas[1].Node {
		t.Errorf("running replica 1 moved from %s to %s", p.Replicas[1].Node, b.Replicas[1].Node)
	}
	run := manifest.Ref{Namespace: "default", Kind: "Job", Name: "tick-29539480"}
	r, ok := out[run]
	if !ok || r.Job == nil || r.Job.CronJob != "tick" || r.Job.ScheduledTime == nil || len(r.Replicas) != 1 || r.Replicas[0].Node == "" {
		t.Fatalf("catch-up run %s: %+v (placements %v)", run.Name, r, keys(out))
	}
	if got := out[tick].CronJob.Active; len(got) != 1 || got[0] != run.Name {
		t.Errorf("active runs %v", got)
	}
	// The run is found again from its record at the next pass.
	in.Current, in.Now = out, in.Now.Add(time.Minute)
	out, _ = Place(in)
	if _, ok := out[run]; !ok || len(out) != 3 {
		t.Errorf("run lost at the next pass: %v", keys(out))
	}
}

func keys(m map[manifest.Ref]manifest.Placement) []string {
	var out []string
	for r := range m {
		out = append(out, r.String())
	}
	return out
}
