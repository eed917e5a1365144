package manifest

import "strings"

func defaultDeployment(o *Deployment) {
	sp := &o.Spec
	if sp.Replicas == nil {
		sp.Replicas = ptr[int32](1)
	}
	if sp.Strategy.Type == "" {
		sp.Strategy.Type = "RollingUpdate"
	}
	if sp.Strategy.Type == "RollingUpdate" {
		if sp.Strategy.RollingUpdate == nil {
			sp.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		if sp.Strategy.RollingUpdate.MaxUnavailable == nil {
			sp.Strategy.RollingUpdate.MaxUnavailable = &IntOrString{IsString: true, StrVal: "25%"}
		}
		if sp.Strategy.RollingUpdate.MaxSurge == nil {
			sp.Strategy.RollingUpdate.MaxSurge = &IntOrString{IsString: true, StrVal: "25%"}
		}
	}
	if sp.RevisionHistoryLimit == nil {
		sp.RevisionHistoryLimit = ptr[int32](10)
	}
	if sp.ProgressDeadlineSeconds == nil {
		sp.ProgressDeadlineSeconds = ptr[int32](600)
	}
	defaultPodSpec(&sp.Template.Spec, RestartAlways)
}

// defaultPodSpec fills Kubernetes' defaults. restartPolicy is defaulted to
// def unless def is empty (Jobs must say it).
func defaultPodSpec(s *PodSpec, def string) {
	if s.RestartPolicy == "" && def != "" {
		s.RestartPolicy = def
	}
	if s.TerminationGracePeriodSeconds == nil {
		s.TerminationGracePeriodSeconds = ptr[int64](30)
	}
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i])
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i])
	}
}

// defaultPullPolicy is Always for :latest or an untagged image, else
// IfNotPresent (an image pinned by digest is IfNotPresent).
func defaultPullPolicy(image string) string {
	if strings.Contains(image, "@") {
		return "IfNotPresent"
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i < 0 || last[i+1:] == "latest" {
		return "Always"
	}
	return "IfNotPresent"
}
