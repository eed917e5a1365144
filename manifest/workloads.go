package manifest

import "fmt"

func (s *Set) workload(d *document, kind string, meta ObjectMeta, tmpl PodTemplateSpec, replicas int) Workload {
	w := Workload{
		Ref:      Ref{Namespace: meta.Namespace, Kind: kind, Name: meta.Name},
		File:     d.file,
		Line:     d.line,
		Replicas: replicas,
		Template: tmpl,
	}
	w.SpecHash = HashTemplate(tmpl)
	w.Suspended = meta.Annotations[AnnotationSuspended] == "true"
	w.doc = d
	w.specField = "spec.template.spec"
	if kind == "Pod" {
		w.specField = "spec"
	}
	return w
}

func (s *Set) addDeployment(d *document, o *Deployment) []Problem {
	defaultDeployment(o)
	probs := validateController(d, o.Spec.Selector, &o.Spec.Template, "spec")
	probs = append(probs, validateReplicas(d, o.Spec.Replicas, "spec.replicas")...)
	probs = append(probs, validateStrategy(d, o)...)
	if len(probs) > 0 {
		return probs
	}
	w := s.workload(d, "Deployment", o.Metadata, o.Spec.Template, int(*o.Spec.Replicas))
	st := o.Spec.Strategy
	w.Rollout = &RolloutSpec{
		Strategy:                st.Type,
		MinReadySeconds:         int(o.Spec.MinReadySeconds),
		ProgressDeadlineSeconds: int(*o.Spec.ProgressDeadlineSeconds),
		Paused:                  o.Spec.Paused,
	}
	if st.RollingUpdate != nil {
		w.Rollout.MaxUnavailable, w.Rollout.MaxSurge = *st.RollingUpdate.MaxUnavailable, *st.RollingUpdate.MaxSurge
	}
	s.Workloads = append(s.Workloads, w)
	return nil
}

func (s *Set) addReplicaSet(d *document, o *ReplicaSet) []Problem {
	if o.Spec.Replicas == nil {
		o.Spec.Replicas = ptr[int32](1)
	}
	defaultPodSpec(&o.Spec.Template.Spec, RestartAlways)
	probs := validateController(d, o.Spec.Selector, &o.Spec.Template, "spec")
	probs = append(probs, validateReplicas(d, o.Spec.Replicas, "spec.replicas")...)
	if len(probs) > 0 {
		return probs
	}
	s.Workloads = append(s.Workloads, s.workload(d, "ReplicaSet", o.Metadata, o.Spec.Template, int(*o.Spec.Replicas)))
	return nil
}

func (s *Set) addDaemonSet(d *document, o *DaemonSet) []Problem {
	defaultPodSpec(&o.Spec.Template.Spec, RestartAlways)
	if o.Spec.UpdateStrategy.Type == "" {
		o.Spec.UpdateStrategy.Type = "RollingUpdate"
	}
	if o.Spec.UpdateStrategy.Type == "RollingUpdate" && o.Spec.UpdateStrategy.RollingUpdate == nil {
		o.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: &IntOrString{IntVal: 1}, MaxSurge: &IntOrString{}}
	}
	if o.Spec.RevisionHistoryLimit == nil {
		o.Spec.RevisionHistoryLimit = ptr[int32](10)
	}
	probs := validateController(d, o.Spec.Selector, &o.Spec.Template, "spec")
	probs = append(probs, validateDaemonSetStrategy(d, o)...)
	if o.Spec.MinReadySeconds < 0 {
		probs = append(probs, valueProblem(d, "spec.minReadySeconds", fmt.Sprint(o.Spec.MinReadySeconds), "must be >= 0"))
	}
	if len(probs) > 0 {
		return probs
	}
	w := s.workload(d, "DaemonSet", o.Metadata, o.Spec.Template, 0)
	w.PerNode = true
	w.Rollout = &RolloutSpec{Strategy: o.Spec.UpdateStrategy.Type, MinReadySeconds: int(o.Spec.MinReadySeconds)}
	if ru := o.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		w.Rollout.MaxUnavailable, w.Rollout.MaxSurge = *ru.MaxUnavailable, *ru.MaxSurge
	}
	s.Workloads = append(s.Workloads, w)
	return nil
}

func (s *Set) addJob(d *document, o *Job) []Problem {
	w, probs := s.jobWorkload(d, o.Metadata, &o.Spec, "spec")
	if len(probs) > 0 {
		return probs
	}
	s.Workloads = append(s.Workloads, w)
	return nil
}

// jobWorkload defaults and validates a Job spec (of a Job, or the template
// of a CronJob's runs at prefix) and returns its workload.
func (s *Set) jobWorkload(d *document, meta ObjectMeta, sp *JobSpec, prefix string) (Workload, []Problem) {
	if sp.Completions == nil {
		sp.Completions = ptr[int32](1)
	}
	if sp.Parallelism == nil {
		sp.Parallelism = ptr[int32](1)
	}
	if sp.BackoffLimit == nil {
		sp.BackoffLimit = ptr[int32](6)
	}
	rp := sp.Template.Spec.RestartPolicy
	defaultPodSpec(&sp.Template.Spec, "")
	var probs []Problem
	switch rp {
	case RestartOnFailure, RestartNever:
	case "":
		probs = append(probs, problemAt(d, prefix+".template.spec.restartPolicy", "required for a Job: OnFailure or Never"))
	default:
		probs = append(probs, valueProblem(d, prefix+".template.spec.restartPolicy", rp, "must be OnFailure or Never for a Job"))
	}
	if sp.Selector != nil && (sp.ManualSelector == nil || !*sp.ManualSelector) {
		probs = append(probs, problemAt(d, prefix+".selector", "set by the Job itself unless spec.manualSelector is true"))
	}
	probs = append(probs, validateReplicas(d, sp.Parallelism, prefix+".parallelism")...)
	probs = append(probs, validateReplicas(d, sp.Completions, prefix+".completions")...)
	probs = append(probs, validateReplicas(d, sp.BackoffLimit, prefix+".backoffLimit")...)
	if sp.ActiveDeadlineSeconds != nil && *sp.ActiveDeadlineSeconds <= 0 {
		probs = append(probs, valueProblem(d, prefix+".activeDeadlineSeconds", fmt.Sprint(*sp.ActiveDeadlineSeconds), "must be positive"))
	}
	if sp.TTLSecondsAfterFinished != nil && *sp.TTLSecondsAfterFinished < 0 {
		probs = append(probs, valueProblem(d, prefix+".ttlSecondsAfterFinished", fmt.Sprint(*sp.TTLSecondsAfterFinished), "must be >= 0"))
	}
	probs = append(probs, validateTemplateLabels(d, sp.Template.Metadata, prefix+".template.metadata")...)
	probs = append(probs, validatePodSpec(d, &sp.Template.Spec, prefix+".template.spec")...)
	if len(probs) > 0 {
		return Workload{}, probs
	}
	n := int(*sp.Parallelism)
	if c := int(*sp.Completions); c < n {
		n = c
	}
	w := s.workload(d, "Job", meta, sp.Template, n)
	w.specField = prefix + ".template.spec"
	js := *sp
	w.Job = &js
	return w, nil
}

func (s *Set) addPod(d *document, o *Pod) []Problem {
	defaultPodSpec(&o.Spec, RestartAlways)
	tmpl := PodTemplateSpec{Metadata: ObjectMeta{Labels: o.Metadata.Labels, Annotations: o.Metadata.Annotations}, Spec: o.Spec}
	if probs := validatePodSpec(d, &o.Spec, "spec"); len(probs) > 0 {
		return probs
	}
	s.Workloads = append(s.Workloads, s.workload(d, "Pod", o.Metadata, tmpl, 1))
	return nil
}

func (s *Set) addReplicationController(d *document, o *ReplicationController) []Problem {
	if o.Spec.Template == nil {
		return []Problem{problemAt(d, "spec.template", "required")}
	}
	if o.Spec.Replicas == nil {
		o.Spec.Replicas = ptr[int32](1)
	}
	sel := o.Spec.Selector
	if len(sel) == 0 {
		sel = o.Spec.Template.Metadata.Labels
	}
	defaultPodSpec(&o.Spec.Template.Spec, RestartAlways)
	probs := validateController(d, &LabelSelector{MatchLabels: sel}, o.Spec.Template, "spec")
	probs = append(probs, validateReplicas(d, o.Spec.Replicas, "spec.replicas")...)
	if len(probs) > 0 {
		return probs
	}
	s.Workloads = append(s.Workloads, s.workload(d, "ReplicationController", o.Metadata, *o.Spec.Template, int(*o.Spec.Replicas)))
	return nil
}
