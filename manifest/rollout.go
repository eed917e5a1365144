package manifest

import (
	"fmt"
	"time"
)

// Rollout strategies, as Kubernetes names them.
const (
	StrategyRollingUpdate = "RollingUpdate"
	StrategyRecreate      = "Recreate"
	StrategyOnDelete      = "OnDelete"
)

// RolloutSpec is how a changed template replaces a workload's replicas:
// a Deployment's strategy or a DaemonSet's updateStrategy, defaulted.
type RolloutSpec struct {
	// Strategy is RollingUpdate, Recreate (Deployments) or OnDelete
	// (DaemonSets).
	Strategy string
	// MaxUnavailable and MaxSurge bound a rolling update, as written: a
	// percentage is resolved against the replica count at each step.
	MaxUnavailable IntOrString
	MaxSurge       IntOrString
	// MinReadySeconds is how long a replica must have been ready to
	// count as available.
	MinReadySeconds int
	// ProgressDeadlineSeconds is how long a rollout may go without
	// progress before it is marked stalled; 0 for none (DaemonSets).
	ProgressDeadlineSeconds int
	// Paused freezes the rollout (Deployments).
	Paused bool
}

// Bounds resolves maxSurge (rounded up) and maxUnavailable (rounded down)
// against replicas, as Kubernetes' deployment controller does: when both
// resolve to 0, one replica may be unavailable, so that a rollout can
// always proceed. A DaemonSet rounds both up, as Kubernetes' DaemonSet
// controller does.
func (r RolloutSpec) Bounds(replicas int, perNode bool) (maxSurge, maxUnavailable int) {
	maxSurge, _ = r.MaxSurge.ScaledValue(replicas, true)
	maxUnavailable, _ = r.MaxUnavailable.ScaledValue(replicas, perNode)
	if maxSurge == 0 && maxUnavailable == 0 {
		maxUnavailable = 1
	}
	return maxSurge, maxUnavailable
}

// Progressing condition reasons, as Kubernetes names them.
const (
	ReasonNewReplicaSetAvailable   = "NewReplicaSetAvailable"
	ReasonReplicaSetUpdated        = "ReplicaSetUpdated"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused         = "DeploymentPaused"
	ReasonNewRolloutStarted        = "NewReplicaSetCreated"
)

// RolloutStatus is the leader's record of a workload's rollout, kept in
// its placement so that a new leader continues where the last one
// stopped.
type RolloutStatus struct {
	// SpecHash is the template being rolled out (the workload's).
	SpecHash string `json:"specHash"`
	// Replicas is the desired count; Updated run the new template;
	// Ready are reported ready; Available have been ready for
	// minReadySeconds. Total counts every replica placed, old and
	// surge ones included.
	Replicas  int `json:"replicas"`
	Total     int `json:"total"`
	Updated   int `json:"updated"`
	Ready     int `json:"ready"`
	Available int `json:"available"`
	// LastProgress is when the rollout last moved: a replica updated,
	// became available, or an old one went.
	LastProgress time.Time `json:"lastProgress"`
	// Progressing is the Kubernetes condition: "True" while moving or
	// complete, "False" when stalled; Reason says which.
	Progressing string `json:"progressing"`
	Reason      string `json:"reason"`
	Message     string `json:"message,omitempty"`
}

// Complete reports whether every replica runs the new template and is
// available, with no old or surge replica left.
func (s *RolloutStatus) Complete() bool {
	return s != nil && s.Updated == s.Replicas && s.Available == s.Replicas && s.Total == s.Replicas
}

// Stalled reports whether the progress deadline passed.
func (s *RolloutStatus) Stalled() bool {
	return s != nil && s.Reason == ReasonProgressDeadlineExceeded
}

// validateRolling checks maxUnavailable and maxSurge as Kubernetes does:
// integers or percentages, not negative, maxUnavailable at most 100%, not
// both zero.
func validateRolling(d *document, field string, mu, ms *IntOrString) []Problem {
	var probs []Problem
	check := func(v *IntOrString, name string) bool {
		f := field + "." + name
		if _, err := v.ScaledValue(100, false); err != nil {
			probs = append(probs, valueProblem(d, f, v.String(), "must be an integer or a percentage"))
			return false
		}
		if !v.IsString && v.IntVal < 0 {
			probs = append(probs, valueProblem(d, f, v.String(), "must be >= 0"))
			return false
		}
		return true
	}
	okU, okS := check(mu, "maxUnavailable"), check(ms, "maxSurge")
	if okU && mu.IsString {
		if p, _ := mu.ScaledValue(100, false); p > 100 {
			probs = append(probs, valueProblem(d, field+".maxUnavailable", mu.String(), "must not be greater than 100%"))
		}
	}
	if okU && okS {
		u, _ := mu.ScaledValue(100, false)
		s, _ := ms.ScaledValue(100, false)
		if u == 0 && s == 0 {
			probs = append(probs, valueProblem(d, field+".maxUnavailable", mu.String(), "may not be 0 when maxSurge is 0"))
		}
	}
	return probs
}

func validateStrategy(d *document, o *Deployment) []Problem {
	var probs []Problem
	st := o.Spec.Strategy
	switch st.Type {
	case StrategyRecreate:
		if st.RollingUpdate != nil {
			probs = append(probs, problemAt(d, "spec.strategy.rollingUpdate", "may not be set when strategy type is Recreate"))
		}
	case StrategyRollingUpdate:
		probs = append(probs, validateRolling(d, "spec.strategy.rollingUpdate", st.RollingUpdate.MaxUnavailable, st.RollingUpdate.MaxSurge)...)
	default:
		probs = append(probs, valueProblem(d, "spec.strategy.type", st.Type, "must be RollingUpdate or Recreate"))
	}
	if o.Spec.MinReadySeconds < 0 {
		probs = append(probs, valueProblem(d, "spec.minReadySeconds", fmt.Sprint(o.Spec.MinReadySeconds), "must be >= 0"))
	}
	if pd := *o.Spec.ProgressDeadlineSeconds; pd <= o.Spec.MinReadySeconds {
		probs = append(probs, valueProblem(d, "spec.progressDeadlineSeconds", fmt.Sprint(pd), "must be greater than minReadySeconds"))
	}
	return probs
}

// validateDaemonSetStrategy defaults and checks a DaemonSet's
// updateStrategy. maxSurge (a second replica on a node while its
// replacement starts) is not supported yet.
func validateDaemonSetStrategy(d *document, o *DaemonSet) []Problem {
	st := &o.Spec.UpdateStrategy
	switch st.Type {
	case StrategyOnDelete:
		return nil
	case StrategyRollingUpdate:
	default:
		return []Problem{valueProblem(d, "spec.updateStrategy.type", st.Type, "must be RollingUpdate or OnDelete")}
	}
	ru := st.RollingUpdate
	if ru.MaxUnavailable == nil {
		ru.MaxUnavailable = &IntOrString{IntVal: 1}
	}
	if ru.MaxSurge == nil {
		ru.MaxSurge = &IntOrString{}
	}
	probs := validateRolling(d, "spec.updateStrategy.rollingUpdate", ru.MaxUnavailable, ru.MaxSurge)
	if len(probs) == 0 {
		if s, _ := ru.MaxSurge.ScaledValue(100, true); s != 0 {
			probs = append(probs, problemAt(d, "spec.updateStrategy.rollingUpdate.maxSurge", "a value other than 0 is not supported by driftless yet"))
		}
	}
	return probs
}
