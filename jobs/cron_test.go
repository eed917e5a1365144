package jobs

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

func cronJob(t *testing.T, schedule string, mod ...string) *manifest.CronJobDef {
	t.Helper()
	doc := `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "` + schedule + `"
` + strings.Join(mod, "\n") + `
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox, command: [sh, -c, "true"]}]
`
	set, err := manifest.Load([]manifest.File{{Path: "c.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	return &set.CronJobs[0]
}

// cluster plays the leader over time: runs are records that CronStep
// started, finished by the test.
type cluster struct {
	c    *manifest.CronJobDef
	rec  *manifest.CronJobStatus
	runs map[string]*Run
}

func (cl *cluster) pass(now time.Time) CronResult {
	var runs []Run
	for _, r := range cl.runs {
		runs = append(runs, *r)
	}
	res := CronStep(cl.c, cl.rec, runs, now)
	rec := res.Record
	cl.rec = &rec
	kept := map[string]*Run{}
	for _, n := range res.Keep {
		kept[n] = cl.runs[n]
	}
	if res.Start != "" {
		kept[res.Start] = &Run{Name: res.Start, ScheduledTime: res.StartScheduled}
	}
	cl.runs = kept
	return res
}

func (cl *cluster) finish(name string, failed bool, at time.Time) {
	r := cl.runs[name]
	r.Finished, r.Failed, r.FinishedTime = true, failed, at
}

func TestCronEveryMinuteAndHistoryLimit(t *testing.T) {
	cl := &cluster{c: cronJob(t, "* * * * *", "  successfulJobsHistoryLimit: 2"), runs: map[string]*Run{}}
	start := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	if res := cl.pass(start); res.Start != "" || !res.Wake.Equal(time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)) {
		t.Fatalf("first sight started %q (nothing is due before the CronJob was seen), wake %v", res.Start, res.Wake)
	}
	var started []string
	for m := 1; m <= 4; m++ {
		now := time.Date(2026, 3, 1, 12, m, 5, 0, time.UTC)
		res := cl.pass(now)
		want := cl.c.RunName(time.Date(2026, 3, 1, 12, m, 0, 0, time.UTC))
		if res.Start != want {
			t.Fatalf("minute %d: started %q, want %q", m, res.Start, want)
		}
		if again := cl.pass(now.Add(10 * time.Second)); again.Start != "" {
			t.Fatalf("minute %d started twice: %q", m, again.Start)
		}
		cl.finish(res.Start, false, now.Add(20*time.Second))
		started = append(started, res.Start)
	}
	if started[0] != "tick-29539441" {
		t.Errorf("run name %q, want tick-<unix minutes>", started[0])
	}
	res := cl.pass(time.Date(2026, 3, 1, 12, 4, 40, 0, time.UTC))
	if !reflect.DeepEqual(res.Keep, started[2:]) || !reflect.DeepEqual(res.Record.Runs, started[2:]) {
		t.Errorf("kept %v (record %v), want the 2 newest %v", res.Keep, res.Record.Runs, started[2:])
	}
	if lst := res.Record.LastSuccessfulTime; lst == nil || !lst.Equal(time.Date(2026, 3, 1, 12, 4, 25, 0, time.UTC)) {
		t.Errorf("last successful %v", lst)
	}
}

func TestCronCatchUpAfterOutageStartsOneRun(t *testing.T) {
	cl := &cluster{c: cronJob(t, "*/5 * * * *"), runs: map[string]*Run{}}
	cl.pass(time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC))
	// The leader is away 3 hours: 36 schedule times missed, one run.
	res := cl.pass(time.Date(2026, 3, 1, 15, 2, 0, 0, time.UTC))
	if want := cl.c.RunName(time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC)); res.Start != want {
		t.Fatalf("started %q, want the most recent missed time %q", res.Start, want)
	}
	if res2 := cl.pass(time.Date(2026, 3, 1, 15, 3, 0, 0, time.UTC)); res2.Start != "" || len(cl.runs) != 1 {
		t.Fatalf("more than one catch-up run: %q, %d runs", res2.Start, len(cl.runs))
	}
}

func TestCronStartingDeadlineSkipsLateRun(t *testing.T) {
	cl := &cluster{c: cronJob(t, "0 * * * *", "  startingDeadlineSeconds: 120"), runs: map[string]*Run{}}
	cl.pass(time.Date(2026, 3, 1, 11, 30, 0, 0, time.UTC))
	// Back at 12:03: the 12:00 run is 3 minutes late, past its deadline.
	if res := cl.pass(time.Date(2026, 3, 1, 12, 3, 0, 0, time.UTC)); res.Start != "" {
		t.Fatalf("late run started: %q", res.Start)
	}
	// Within the deadline it starts.
	if res := cl.pass(time.Date(2026, 3, 1, 13, 1, 59, 0, time.UTC)); res.Start != cl.c.RunName(time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)) {
		t.Fatalf("run within its deadline not started: %q", res.Start)
	}
}

func TestCronForbidAndReplace(t *testing.T) {
	t.Run("Forbid", func(t *testing.T) {
		cl := &cluster{c: cronJob(t, "* * * * *", "  concurrencyPolicy: Forbid", "  startingDeadlineSeconds: 30"), runs: map[string]*Run{}}
		cl.pass(time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC))
		first := cl.pass(time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)).Start
		if res := cl.pass(time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC)); res.Start != "" {
			t.Fatalf("started %q while %q is active", res.Start, first)
		}
		cl.finish(first, false, time.Date(2026, 3, 1, 12, 2, 10, 0, time.UTC))
		// Still within 30 s of 12:02: it starts now.
		if res := cl.pass(time.Date(2026, 3, 1, 12, 2, 20, 0, time.UTC)); res.Start != cl.c.RunName(time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC)) {
			t.Fatalf("skipped run not started once the active one ended: %q", res.Start)
		}
	})
	t.Run("Replace", func(t *testing.T) {
		cl := &cluster{c: cronJob(t, "* * * * *", "  concurrencyPolicy: Replace"), runs: map[string]*Run{}}
		cl.pass(time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC))
		first := cl.pass(time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)).Start
		res := cl.pass(time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC))
		if res.Start == "" || len(res.Keep) != 0 || !reflect.DeepEqual(res.Record.Active, []string{res.Start}) {
			t.Fatalf("replace: start %q keep %v active %v (first %q)", res.Start, res.Keep, res.Record.Active, first)
		}
	})
	t.Run("Allow", func(t *testing.T) {
		cl := &cluster{c: cronJob(t, "* * * * *"), runs: map[string]*Run{}}
		cl.pass(time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC))
		cl.pass(time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC))
		res := cl.pass(time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC))
		if len(res.Record.Active) != 2 {
			t.Fatalf("allow: active %v", res.Record.Active)
		}
	})
}

func TestCronSuspendAndTimeZone(t *testing.T) {
	cl := &cluster{c: cronJob(t, "0 9 * * *", "  suspend: true", "  timeZone: America/New_York"), runs: map[string]*Run{}}
	cl.pass(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if res := cl.pass(time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC)); res.Start != "" || !res.Wake.IsZero() {
		t.Fatalf("suspended CronJob started %q", res.Start)
	}
	*cl.c.Spec.Suspend = false
	// 09:00 in New York is 14:00 UTC in winter.
	if res := cl.pass(time.Date(2026, 3, 1, 14, 0, 1, 0, time.UTC)); res.Start != cl.c.RunName(time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)) {
		t.Fatalf("started %q", res.Start)
	}
}

// A long outage with an every-minute schedule costs a bounded walk.
func BenchmarkCronStepAfterYearOutage(b *testing.B) {
	t := &testing.T{}
	c := cronJob(t, "* * * * *")
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := &manifest.CronJobStatus{Since: since}
	now := since.Add(365 * 24 * time.Hour)
	for i := 0; i < b.N; i++ {
		CronStep(c, rec, nil, now)
	}
}
