package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/agent"
	"driftless.dev/driftless/manifest"
)

func job(name string, completions, parallelism, backoff int, policy, script, extra string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %[1]s
spec:
  completions: %[2]d
  parallelism: %[3]d
  backoffLimit: %[4]d
%[7]s
  template:
    spec:
      restartPolicy: %[5]s
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", %[6]q]
`, name, completions, parallelism, backoff, policy, script, extra)
}

// statusFile reads one placement file of the status branch, as a person
// would with git show.
func statusFile(t *testing.T, dir, path string) (manifest.Placement, bool) {
	t.Helper()
	fetch := exec.Command("git", "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
	fetch.Dir = dir
	if out, err := fetch.CombinedOutput(); err != nil {
		t.Fatalf("git fetch: %v\n%s", err, out)
	}
	show := exec.Command("git", "show", "origin/driftless/status:"+path)
	show.Dir = dir
	out, err := show.Output()
	if err != nil {
		return manifest.Placement{}, false
	}
	var p manifest.Placement
	if err := yaml.Unmarshal(out, &p); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, out)
	}
	return p, true
}

func TestJobsToCompletion(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("jobs/count.yaml", job("count", 3, 2, 6, "Never", "sleep 1; echo done", "  ttlSecondsAfterFinished: 4"))
	e.work.WriteFile("jobs/fails.yaml", job("fails", 1, 1, 1, "Never", "echo no; exit 3", ""))
	e.work.WriteFile("jobs/onfailure.yaml", job("onfailure", 1, 1, 0, "OnFailure", "exit 1", ""))
	e.work.Commit("three jobs")
	e.work.Push()
	startAgent(t, e.opts(t, "node-1"))

	// count: 3 completions, never more than 2 at once, recorded on the
	// status branch; after its TTL its containers go, its record stays.
	maxRunning := 0
	waitFor(t, "count to complete", 60*time.Second, func() (bool, string) {
		maxRunning = max(maxRunning, running(listTasks(t, e.client, "count")))
		p, ok := statusFile(t, e.work.Dir, "placements/default/Job.count.yaml")
		return ok && p.Job != nil && p.Job.Condition == manifest.JobComplete, fmt.Sprintf("%+v", p.Job)
	})
	if maxRunning > 2 {
		t.Errorf("%d replicas of count ran at once, parallelism is 2", maxRunning)
	}
	p, _ := statusFile(t, e.work.Dir, "placements/default/Job.count.yaml")
	if p.Job.Succeeded != 3 || p.Job.Failed != 0 || p.Job.CompletionTime == nil || len(p.Replicas) != 3 {
		t.Fatalf("count record %+v, replicas %+v", p.Job, p.Replicas)
	}
	for _, r := range p.Replicas {
		if r.Status == nil || r.Status.Phase != manifest.PhaseSucceeded {
			t.Errorf("replica %d status %+v", r.Index, r.Status)
		}
	}
	waitFor(t, "count's containers removed after its TTL", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "count")
		p, _ := statusFile(t, e.work.Dir, "placements/default/Job.count.yaml")
		return len(ts) == 0 && p.Job != nil && p.Job.Expired && len(p.Replicas) == 0, fmt.Sprintf("%d containers, %+v", len(ts), p.Job)
	})
	if p, _ := statusFile(t, e.work.Dir, "placements/default/Job.count.yaml"); p.Job.Succeeded != 3 || p.Job.Condition != manifest.JobComplete {
		t.Errorf("record after TTL: %+v", p.Job)
	}

	// fails: two failed replicas (indexes 0 and 1) > backoffLimit 1.
	waitFor(t, "fails to hit its backoff limit", 60*time.Second, func() (bool, string) {
		p, ok := statusFile(t, e.work.Dir, "placements/default/Job.fails.yaml")
		return ok && p.Job != nil && p.Job.Condition == manifest.JobFailed, fmt.Sprintf("%+v", p.Job)
	})
	p, _ = statusFile(t, e.work.Dir, "placements/default/Job.fails.yaml")
	if p.Job.Reason != manifest.ReasonBackoffLimitExceeded || p.Job.Failed != 2 || len(p.Replicas) != 2 || p.Replicas[1].Index != 1 {
		t.Errorf("fails record %+v replicas %+v", p.Job, p.Replicas)
	}
	// Its containers stay (exited) for their logs, and are not restarted.
	time.Sleep(2 * time.Second)
	if ts := listTasks(t, e.client, "fails"); len(ts) != 2 || running(ts) != 0 {
		t.Errorf("fails containers %+v, want 2 exited", ts)
	}

	// onfailure: restarted in place by the node; the restart is a failure
	// beyond backoffLimit 0, and the running replica is stopped.
	waitFor(t, "onfailure to fail", 60*time.Second, func() (bool, string) {
		p, ok := statusFile(t, e.work.Dir, "placements/default/Job.onfailure.yaml")
		return ok && p.Job != nil && p.Job.Condition == manifest.JobFailed, fmt.Sprintf("%+v", p.Job)
	})
	p, _ = statusFile(t, e.work.Dir, "placements/default/Job.onfailure.yaml")
	if p.Job.Reason != manifest.ReasonBackoffLimitExceeded || p.Job.Failed != 1 || len(p.Replicas) != 0 {
		t.Errorf("onfailure record %+v replicas %+v", p.Job, p.Replicas)
	}
	waitFor(t, "onfailure's container removed", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "onfailure")
		return len(ts) == 0, fmt.Sprintf("%+v", ts)
	})

	// driftless status shows the runs.
	out := statusText(t, e.bin, e.url)
	for _, want := range []string{"JOBS", "default/Job/fails", "Failed (BackoffLimitExceeded)", "Complete, replicas removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("driftless status lacks %q:\n%s", want, out)
		}
	}

	// The change log tells the story.
	log := gitOut(t, e.work.Dir, "log", "--format=%B", "origin/driftless/status")
	for _, want := range []string{"job default/count: Complete (3 succeeded, 0 failed)", "job default/fails: Failed (BackoffLimitExceeded; 0 succeeded, 2 failed)", "job default/count: replicas removed (ttlSecondsAfterFinished)"} {
		if !strings.Contains(log, want) {
			t.Errorf("status log lacks %q:\n%s", want, log)
		}
	}
}

// TestCronJobRunsOnSchedule runs the agent on a clock 60 times faster than
// real time (a minute a second), so an every-minute schedule runs several
// times in seconds.
func TestCronJobRunsOnSchedule(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("cron/tick.yaml", `apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 2
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
            - name: main
              image: busybox:latest
              imagePullPolicy: IfNotPresent
              command: ["sh", "-c", "echo tick"]
`)
	e.work.Commit("tick every minute")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.env = []string{agent.ClockRateEnv + "=60"}
	startAgent(t, o)

	runName := regexp.MustCompile(`job default/(tick-\d+): `)
	var runs []string
	waitFor(t, "4 runs on the status branch", 60*time.Second, func() (bool, string) {
		if _, ok := statusFile(t, e.work.Dir, "cluster.yaml"); !ok {
			return false, "no status branch yet"
		}
		log := gitOut(t, e.work.Dir, "log", "--reverse", "--format=%B", "origin/driftless/status")
		seen := map[string]bool{}
		runs = runs[:0]
		for _, m := range runName.FindAllStringSubmatch(log, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				runs = append(runs, m[1])
			}
		}
		return len(runs) >= 4, fmt.Sprintf("runs %v", runs)
	})
	// Every run is named for its schedule minute, in order. A minute may
	// be skipped when the previous run is still active (Forbid) on a busy
	// machine, as Kubernetes skips it; never run twice.
	var minutes []int64
	for _, r := range runs {
		m, err := strconv.ParseInt(strings.TrimPrefix(r, "tick-"), 10, 64)
		if err != nil {
			t.Fatalf("run name %q", r)
		}
		minutes = append(minutes, m)
	}
	for i := 1; i < len(minutes); i++ {
		if minutes[i] <= minutes[i-1] {
			t.Errorf("runs %v are not in schedule order, one per minute", runs)
		}
	}
	// Finished runs beyond the history limit are removed: the record keeps
	// at most 2 finished runs, and their containers only.
	waitFor(t, "history pruned to 2 finished runs", 30*time.Second, func() (bool, string) {
		p, ok := statusFile(t, e.work.Dir, "placements/default/CronJob.tick.yaml")
		if !ok || p.CronJob == nil || p.CronJob.LastSuccessfulTime == nil {
			return false, fmt.Sprintf("%+v", p.CronJob)
		}
		finished := len(p.CronJob.Runs) - len(p.CronJob.Active)
		names := map[string]bool{}
		for _, r := range p.CronJob.Runs {
			names[r] = true
		}
		for _, r := range runs[:len(runs)-3] {
			if names[r] || len(listTasks(t, e.client, r)) > 0 {
				return false, fmt.Sprintf("old run %s still kept: %+v", r, p.CronJob)
			}
		}
		return finished <= 2, fmt.Sprintf("%+v", p.CronJob)
	})
	if _, ok := statusFile(t, e.work.Dir, "placements/default/Job."+runs[0]+".yaml"); ok {
		t.Errorf("pruned run %s still has a placement", runs[0])
	}
	log := gitOut(t, e.work.Dir, "log", "--format=%B", "origin/driftless/status")
	if !strings.Contains(log, "cronjob default/tick: run for ") {
		t.Errorf("status log does not record the runs:\n%s", log)
	}
}
