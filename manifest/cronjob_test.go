package manifest

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const goodCronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
spec:
  schedule: "30 2 * * *"
  timeZone: Europe/Paris
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      completions: 2
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: main
              image: busybox:1.36
              command: ["sh", "-c", "true"]
`

func TestCronJobLoadsWithDefaultsAndSchedule(t *testing.T) {
	set, errs := load(t, "cron.yaml", goodCronJob)
	if errs != nil {
		t.Fatal(errs)
	}
	if len(set.Workloads) != 0 || len(set.CronJobs) != 1 {
		t.Fatalf("workloads %d cronjobs %d, want 0 and 1", len(set.Workloads), len(set.CronJobs))
	}
	c, ok := set.CronJob(Ref{Namespace: "default", Kind: "CronJob", Name: "backup"})
	if !ok {
		t.Fatal("CronJob not found by ref")
	}
	if *c.Spec.SuccessfulJobsHistoryLimit != 3 || *c.Spec.FailedJobsHistoryLimit != 1 || *c.Spec.Suspend || *c.Spec.JobTemplate.Spec.BackoffLimit != 6 {
		t.Errorf("defaults not applied: %+v", c.Spec)
	}
	// 02:30 in Paris is 00:30 UTC in summer (CEST) and 01:30 in winter.
	summer := c.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 7, 1, 0, 30, 0, 0, time.UTC); !summer.Equal(want) {
		t.Errorf("next in summer = %s, want %s", summer.UTC(), want)
	}
	winter := c.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 1, 1, 1, 30, 0, 0, time.UTC); !winter.Equal(want) {
		t.Errorf("next in winter = %s, want %s", winter.UTC(), want)
	}
	at := time.Date(2026, 1, 1, 1, 30, 0, 0, time.UTC)
	run := c.Run(c.RunName(at))
	if run.Ref != (Ref{Namespace: "default", Kind: "Job", Name: "backup-29453850"}) || run.Job == nil || *run.Job.Completions != 2 {
		t.Errorf("run = %+v", run.Ref)
	}
	if run.SpecHash == "" || run.SpecHash != c.Template.SpecHash {
		t.Errorf("run spec hash %q, template %q", run.SpecHash, c.Template.SpecHash)
	}
}

func TestCronJobDescriptors(t *testing.T) {
	for _, s := range []string{"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@every 90m", "*/5 * * * 1-5"} {
		in := strings.Replace(goodCronJob, `"30 2 * * *"`, `"`+s+`"`, 1)
		if _, errs := load(t, "cron.yaml", in); errs != nil {
			t.Errorf("%s: %v", s, errs)
		}
	}
}

func TestCronJobValidation(t *testing.T) {
	cases := []struct {
		name string
		from string
		to   string
		want []string
	}{
		{"bad zone", "timeZone: Europe/Paris", "timeZone: Mars/Olympus",
			[]string{`cron.yaml:7: spec.timeZone: "Mars/Olympus": unknown time zone (an IANA name such as Europe/Paris or Etc/UTC)`}},
		{"bad schedule", `"30 2 * * *"`, `"61 * * * *"`,
			[]string{`cron.yaml:6: spec.schedule: "61 * * * *": not a cron schedule`}},
		{"six fields", `"30 2 * * *"`, `"0 30 2 * * *"`,
			[]string{`cron.yaml:6: spec.schedule: "0 30 2 * * *": not a cron schedule`}},
		{"TZ in schedule", `"30 2 * * *"`, `"CRON_TZ=UTC 30 2 * * *"`,
			[]string{`cron.yaml:6: spec.schedule: "CRON_TZ=UTC 30 2 * * *": TZ= and CRON_TZ= are not supported in the schedule; use spec.timeZone`}},
		{"policy", "concurrencyPolicy: Forbid", "concurrencyPolicy: Sometimes",
			[]string{`cron.yaml:8: spec.concurrencyPolicy: "Sometimes": must be Allow, Forbid or Replace`}},
		{"job restart policy", "restartPolicy: Never", "restartPolicy: Always",
			[]string{`cron.yaml:14: spec.jobTemplate.spec.template.spec.restartPolicy: "Always": must be OnFailure or Never for a Job`}},
		{"unknown field", "concurrencyPolicy: Forbid", "concurrencyPolicy: Forbid\n  startingDeadline: 10",
			[]string{`cron.yaml:9: spec.startingDeadline: unknown field`}},
		{"v1beta1", "apiVersion: batch/v1", "apiVersion: batch/v1beta1",
			[]string{`cron.yaml:1: apiVersion: "batch/v1beta1": CronJob must be batch/v1 (batch/v1beta1 is not served by Kubernetes since 1.25; the fields are the same)`}},
		{"long name", "name: backup", "name: " + strings.Repeat("b", 53),
			[]string{`cron.yaml:4: metadata.name: "` + strings.Repeat("b", 53) + `": must be at most 52 characters (a run's name adds the schedule time)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(goodCronJob, tc.from, tc.to, 1)
			if in == goodCronJob {
				t.Fatalf("replacement %q not applied", tc.from)
			}
			_, errs := load(t, "cron.yaml", in)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %q, want %q", errs, tc.want)
			}
			for i := range errs {
				if !strings.HasPrefix(errs[i], tc.want[i]) {
					t.Errorf("got %q, want prefix %q", errs[i], tc.want[i])
				}
			}
		})
	}
}

func TestCronJobRefsResolved(t *testing.T) {
	in := strings.Replace(goodCronJob, `command: ["sh", "-c", "true"]`, "command: [\"sh\", \"-c\", \"true\"]\n              envFrom: [{configMapRef: {name: settings}}]", 1)
	set, errs := load(t, "cron.yaml", in)
	if errs != nil {
		t.Fatalf("a missing reference refuses the commit: %q", errs)
	}
	want := []string{`cron.yaml:19: spec.jobTemplate.spec.template.spec.containers[0].envFrom[0].configMapRef.name: "settings": ConfigMap not found in namespace default of this commit: its replicas stay Pending (CreateContainerConfigError) until a commit adds it (mark it optional: true if it may be absent)`}
	if got := warnings(set); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
