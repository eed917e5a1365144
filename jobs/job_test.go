package jobs

import (
	"reflect"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func jobWorkload(completions, parallelism, backoff int32, mod ...func(*manifest.JobSpec)) *manifest.Workload {
	js := &manifest.JobSpec{Completions: ptr(completions), Parallelism: ptr(parallelism), BackoffLimit: ptr(backoff)}
	for _, m := range mod {
		m(js)
	}
	return &manifest.Workload{Ref: manifest.Ref{Namespace: "default", Kind: "Job", Name: "pi"}, SpecHash: "h1", Job: js}
}

// place plays the scheduler: the active indexes become replicas (keeping
// the status of those already there), the finished ones are appended.
func place(prev *manifest.Placement, res JobResult) *manifest.Placement {
	p := &manifest.Placement{Workload: manifest.Ref{Namespace: "default", Kind: "Job", Name: "pi"}, SpecHash: res.Record.SpecHash}
	for _, i := range res.Active {
		r := manifest.ReplicaPlacement{Index: i, Node: "n1"}
		if prev != nil {
			for _, o := range prev.Replicas {
				if o.Index == i {
					r.Status = o.Status
				}
			}
		}
		p.Replicas = append(p.Replicas, r)
	}
	p.Replicas = append(p.Replicas, res.Finished...)
	rec := res.Record
	p.Job = &rec
	return p
}

// report sets the phase a node reported for a replica.
func report(p *manifest.Placement, index int, phase string, restarts int) {
	for i := range p.Replicas {
		if p.Replicas[i].Index == index {
			p.Replicas[i].Status = &manifest.ReplicaStatus{Phase: phase, Restarts: restarts}
			return
		}
	}
	panic("no replica")
}

func TestJobCompletesWithParallelism(t *testing.T) {
	w := jobWorkload(3, 2, 6)
	res := Step(w, nil, t0)
	if !reflect.DeepEqual(res.Active, []int{0, 1}) || res.Record.Active != 2 || res.Record.StartTime != t0 {
		t.Fatalf("first pass: active %v record %+v", res.Active, res.Record)
	}
	p := place(nil, res)
	report(p, 0, manifest.PhaseRunning, 0)
	report(p, 1, manifest.PhaseSucceeded, 0)
	res = Step(w, p, t0.Add(time.Second))
	// One succeeded, two still to go: 0 keeps running, 2 is new.
	if !reflect.DeepEqual(res.Active, []int{0, 2}) || res.Record.Succeeded != 1 || len(res.Finished) != 1 {
		t.Fatalf("second pass: active %v finished %d record %+v", res.Active, len(res.Finished), res.Record)
	}
	// A pass seen twice counts nothing twice.
	again := Step(w, p, t0.Add(2*time.Second))
	if !reflect.DeepEqual(again.Record, res.Record) {
		t.Fatalf("same input, different record:\n%+v\n%+v", again.Record, res.Record)
	}
	p = place(p, res)
	report(p, 0, manifest.PhaseSucceeded, 0)
	res = Step(w, p, t0.Add(3*time.Second))
	// Only one completion left: parallelism is capped by what remains.
	if !reflect.DeepEqual(res.Active, []int{2}) || res.Record.Succeeded != 2 {
		t.Fatalf("third pass: active %v record %+v", res.Active, res.Record)
	}
	p = place(p, res)
	report(p, 2, manifest.PhaseSucceeded, 0)
	res = Step(w, p, t0.Add(4*time.Second))
	if res.Record.Condition != manifest.JobComplete || res.Record.Succeeded != 3 || len(res.Active) != 0 || len(res.Finished) != 3 {
		t.Fatalf("done: %+v active %v finished %d", res.Record, res.Active, len(res.Finished))
	}
	if ct := res.Record.CompletionTime; ct == nil || !ct.Equal(t0.Add(4*time.Second)) {
		t.Errorf("completion time %v", ct)
	}
	// A finished Job stays finished: a later report changes nothing.
	p = place(p, res)
	report(p, 2, manifest.PhasePending, 0)
	res2 := Step(w, p, t0.Add(time.Hour))
	if !reflect.DeepEqual(res2.Record, res.Record) || len(res2.Active) != 0 {
		t.Errorf("finished Job changed: %+v", res2.Record)
	}
}

func TestJobNeverReplacesFailedReplicaUntilBackoffLimit(t *testing.T) {
	w := jobWorkload(1, 1, 2)
	res := Step(w, nil, t0)
	p := place(nil, res)
	for i, want := range []int{1, 2, 3} {
		report(p, res.Active[0], manifest.PhaseFailed, 0)
		res = Step(w, p, t0.Add(time.Duration(i+1)*time.Second))
		if res.Record.Failed != i+1 {
			t.Fatalf("failed %d, want %d", res.Record.Failed, i+1)
		}
		if i < 2 {
			if !reflect.DeepEqual(res.Active, []int{want}) {
				t.Fatalf("after failure %d active %v, want [%d] (a new index)", i+1, res.Active, want)
			}
			p = place(p, res)
		}
	}
	// 3 failures > backoffLimit 2.
	if res.Record.Condition != manifest.JobFailed || res.Record.Reason != manifest.ReasonBackoffLimitExceeded || len(res.Active) != 0 {
		t.Fatalf("record %+v active %v", res.Record, res.Active)
	}
	if len(res.Finished) != 3 || res.Record.CompletionTime != nil || res.Record.FinishedTime == nil {
		t.Errorf("finished %d record %+v", len(res.Finished), res.Record)
	}
}

func TestJobOnFailureCountsRestarts(t *testing.T) {
	w := jobWorkload(1, 1, 3)
	res := Step(w, nil, t0)
	p := place(nil, res)
	report(p, 0, manifest.PhaseRunning, 3)
	res = Step(w, p, t0.Add(time.Second))
	if res.Record.Condition != "" || res.Record.Failed != 3 || !reflect.DeepEqual(res.Active, []int{0}) {
		t.Fatalf("3 restarts, limit 3: %+v active %v", res.Record, res.Active)
	}
	report(p, 0, manifest.PhaseRunning, 4)
	res = Step(w, p, t0.Add(2*time.Second))
	if res.Record.Reason != manifest.ReasonBackoffLimitExceeded || len(res.Active) != 0 {
		t.Fatalf("4 restarts, limit 3: %+v active %v", res.Record, res.Active)
	}
	// The running replica is stopped: not finished, not active.
	if len(res.Finished) != 0 {
		t.Errorf("finished %v", res.Finished)
	}
}

func TestJobDeadlineStopsActiveReplicas(t *testing.T) {
	w := jobWorkload(4, 2, 6, func(s *manifest.JobSpec) { s.ActiveDeadlineSeconds = ptr[int64](60) })
	res := Step(w, nil, t0)
	if !res.Wake.Equal(t0.Add(time.Minute)) {
		t.Errorf("wake %v, want the deadline", res.Wake)
	}
	p := place(nil, res)
	report(p, 0, manifest.PhaseSucceeded, 0)
	report(p, 1, manifest.PhaseRunning, 0)
	res = Step(w, p, t0.Add(59*time.Second))
	if res.Record.Condition != "" {
		t.Fatalf("failed before the deadline: %+v", res.Record)
	}
	p = place(p, res)
	res = Step(w, p, t0.Add(60*time.Second))
	if res.Record.Condition != manifest.JobFailed || res.Record.Reason != manifest.ReasonDeadlineExceeded {
		t.Fatalf("record %+v", res.Record)
	}
	if len(res.Active) != 0 || len(res.Finished) != 1 || res.Record.Succeeded != 1 {
		t.Errorf("active %v finished %d record %+v", res.Active, len(res.Finished), res.Record)
	}
}

func TestJobTTLRemovesReplicasKeepsRecord(t *testing.T) {
	w := jobWorkload(1, 1, 6, func(s *manifest.JobSpec) { s.TTLSecondsAfterFinished = ptr[int32](100) })
	p := place(nil, Step(w, nil, t0))
	report(p, 0, manifest.PhaseSucceeded, 0)
	res := Step(w, p, t0.Add(10*time.Second))
	if res.Record.Condition != manifest.JobComplete || !res.Wake.Equal(t0.Add(110*time.Second)) {
		t.Fatalf("record %+v wake %v", res.Record, res.Wake)
	}
	p = place(p, res)
	if res = Step(w, p, t0.Add(109*time.Second)); res.Record.Expired || len(res.Finished) != 1 {
		t.Fatalf("expired early: %+v", res.Record)
	}
	res = Step(w, p, t0.Add(110*time.Second))
	if !res.Record.Expired || len(res.Finished) != 0 || res.Record.Succeeded != 1 || res.Record.Condition != manifest.JobComplete {
		t.Fatalf("after TTL: %+v finished %d", res.Record, len(res.Finished))
	}
}

func TestJobTemplateChangeStartsNewRun(t *testing.T) {
	w := jobWorkload(2, 2, 6)
	p := place(nil, Step(w, nil, t0))
	report(p, 0, manifest.PhaseSucceeded, 0)
	p = place(p, Step(w, p, t0.Add(time.Second)))
	w2 := *w
	w2.SpecHash = "h2"
	res := Step(&w2, p, t0.Add(time.Minute))
	if res.Record.SpecHash != "h2" || res.Record.Succeeded != 0 || len(res.Finished) != 0 || !res.Record.StartTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("new run record %+v finished %d", res.Record, len(res.Finished))
	}
	// Indexes are not reused across runs.
	if !reflect.DeepEqual(res.Active, []int{2, 3}) {
		t.Errorf("active %v, want [2 3]", res.Active)
	}
}

func TestJobParallelismLowered(t *testing.T) {
	w := jobWorkload(5, 3, 6)
	p := place(nil, Step(w, nil, t0))
	*w.Job.Parallelism = 1
	res := Step(w, p, t0.Add(time.Second))
	if !reflect.DeepEqual(res.Active, []int{0}) || res.Record.NextIndex != 3 {
		t.Errorf("active %v next %d", res.Active, res.Record.NextIndex)
	}
}

func TestFinishedCronRunIgnoresTemplateChange(t *testing.T) {
	w := jobWorkload(1, 1, 6)
	res := Step(w, nil, t0)
	res.Record.CronJob = "tick"
	p := place(nil, res)
	report(p, 0, manifest.PhaseSucceeded, 0)
	p = place(p, Step(w, p, t0.Add(time.Second)))
	w2 := *w
	w2.SpecHash = "h2"
	res = Step(&w2, p, t0.Add(time.Minute))
	if res.Record.Condition != manifest.JobComplete || len(res.Active) != 0 || len(res.Finished) != 1 {
		t.Fatalf("finished run restarted: %+v active %v", res.Record, res.Active)
	}
}

// A suspended Job runs nothing; resumed, it runs with its deadline
// counted from the resume.
func TestSuspendedJob(t *testing.T) {
	yes, no := true, false
	dl := int64(60)
	w := &manifest.Workload{Ref: manifest.Ref{Namespace: "default", Kind: "Job", Name: "batch"}, SpecHash: "h",
		Job: &manifest.JobSpec{Parallelism: ptr32(2), Completions: ptr32(2), BackoffLimit: ptr32(6), ActiveDeadlineSeconds: &dl, Suspend: &yes}}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	res := Step(w, nil, t0)
	if len(res.Active) != 0 || !res.Record.Suspended {
		t.Fatalf("suspended: %+v", res)
	}
	prev := &manifest.Placement{Job: &res.Record}
	w.Job.Suspend = &no
	later := t0.Add(5 * time.Minute) // past the deadline counted from the start
	res = Step(w, prev, later)
	if len(res.Active) != 2 || res.Record.Suspended || res.Record.Finished() || !res.Record.StartTime.Equal(later) {
		t.Fatalf("resumed: %+v", res)
	}
}

func ptr32(v int32) *int32 { return &v }
