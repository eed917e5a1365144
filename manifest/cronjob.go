package manifest

import (
	"fmt"
	"sort"
	"strings"
	"time"

	// The IANA database is built in, so that timeZone means the same on
	// every node whatever its /usr/share/zoneinfo holds.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// CronJobDef is a CronJob of the desired state, defaulted and validated,
// with its schedule parsed.
type CronJobDef struct {
	Ref
	File string
	Line int
	// Spec is the defaulted spec (its JobTemplate too).
	Spec CronJobSpec
	// Location is the time zone the schedule is read in.
	Location *time.Location
	// Schedule gives the schedule times.
	Schedule cron.Schedule
	// Template is the workload every run is made from: a Job named like
	// the CronJob; Run renames it.
	Template Workload
}

// CronJob policies.
const (
	ConcurrencyAllow   = "Allow"
	ConcurrencyForbid  = "Forbid"
	ConcurrencyReplace = "Replace"
)

// maxCronJobName leaves room for the "-<unix minutes>" suffix of a run's
// name within 63 characters, as Kubernetes does.
const maxCronJobName = 52

// CronJob returns the CronJob named by ref (Kind CronJob).
func (s *Set) CronJob(ref Ref) (*CronJobDef, bool) {
	i := sort.Search(len(s.CronJobs), func(i int) bool { return !refLess(s.CronJobs[i].Ref, ref) })
	if i < len(s.CronJobs) && s.CronJobs[i].Ref == ref {
		return &s.CronJobs[i], true
	}
	return nil, false
}

// RunName is the name of the run scheduled at t: the CronJob's name and
// t in minutes since the Unix epoch, as Kubernetes names it.
func (c *CronJobDef) RunName(t time.Time) string {
	return fmt.Sprintf("%s-%d", c.Name, t.Unix()/60)
}

// Run returns the workload of the run named name (a Job).
func (c *CronJobDef) Run(name string) Workload {
	w := c.Template
	w.Ref = Ref{Namespace: c.Namespace, Kind: "Job", Name: name}
	return w
}

// Next returns the first schedule time after t, in the CronJob's zone.
func (c *CronJobDef) Next(t time.Time) time.Time {
	return c.Schedule.Next(t.In(c.Location))
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (s *Set) addCronJob(d *document, o *CronJob) []Problem {
	sp := &o.Spec
	var probs []Problem
	if len(o.Metadata.Name) > maxCronJobName {
		probs = append(probs, valueProblem(d, "metadata.name", o.Metadata.Name, fmt.Sprintf("must be at most %d characters (a run's name adds the schedule time)", maxCronJobName)))
	}
	loc := time.UTC
	if sp.TimeZone != nil {
		tz := *sp.TimeZone
		l, err := time.LoadLocation(tz)
		switch {
		case tz == "" || tz == "Local" || err != nil:
			probs = append(probs, valueProblem(d, "spec.timeZone", tz, "unknown time zone (an IANA name such as Europe/Paris or Etc/UTC)"))
		default:
			loc = l
		}
	}
	var sched cron.Schedule
	switch {
	case strings.TrimSpace(sp.Schedule) == "":
		probs = append(probs, problemAt(d, "spec.schedule", "required"))
	case strings.Contains(sp.Schedule, "TZ="):
		probs = append(probs, valueProblem(d, "spec.schedule", sp.Schedule, "TZ= and CRON_TZ= are not supported in the schedule; use spec.timeZone"))
	default:
		var err error
		if sched, err = cronParser.Parse(sp.Schedule); err != nil {
			probs = append(probs, valueProblem(d, "spec.schedule", sp.Schedule, "not a cron schedule ("+err.Error()+"): 5 fields (minute hour day-of-month month day-of-week) or @yearly, @monthly, @weekly, @daily, @hourly, @every <duration>"))
		}
	}
	if sp.ConcurrencyPolicy == "" {
		sp.ConcurrencyPolicy = ConcurrencyAllow
	}
	switch sp.ConcurrencyPolicy {
	case ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		probs = append(probs, valueProblem(d, "spec.concurrencyPolicy", sp.ConcurrencyPolicy, "must be Allow, Forbid or Replace"))
	}
	if sp.StartingDeadlineSeconds != nil && *sp.StartingDeadlineSeconds < 0 {
		probs = append(probs, valueProblem(d, "spec.startingDeadlineSeconds", fmt.Sprint(*sp.StartingDeadlineSeconds), "must be >= 0"))
	}
	if sp.Suspend == nil {
		sp.Suspend = ptr(false)
	}
	if sp.SuccessfulJobsHistoryLimit == nil {
		sp.SuccessfulJobsHistoryLimit = ptr[int32](3)
	}
	if sp.FailedJobsHistoryLimit == nil {
		sp.FailedJobsHistoryLimit = ptr[int32](1)
	}
	probs = append(probs, validateReplicas(d, sp.SuccessfulJobsHistoryLimit, "spec.successfulJobsHistoryLimit")...)
	probs = append(probs, validateReplicas(d, sp.FailedJobsHistoryLimit, "spec.failedJobsHistoryLimit")...)
	if m := sp.JobTemplate.Metadata; m.Name != "" || m.Namespace != "" {
		probs = append(probs, problemAt(d, "spec.jobTemplate.metadata", "name and namespace of a template are not used; remove them"))
	}
	probs = append(probs, validateLabels(d, sp.JobTemplate.Metadata.Labels, "spec.jobTemplate.metadata.labels")...)
	w, jprobs := s.jobWorkload(d, o.Metadata, &sp.JobTemplate.Spec, "spec.jobTemplate.spec")
	probs = append(probs, jprobs...)
	if len(probs) > 0 {
		return probs
	}
	s.CronJobs = append(s.CronJobs, CronJobDef{
		Ref:      Ref{Namespace: o.Metadata.Namespace, Kind: "CronJob", Name: o.Metadata.Name},
		File:     d.file,
		Line:     d.line,
		Spec:     *sp,
		Location: loc,
		Schedule: sched,
		Template: w,
	})
	return nil
}
