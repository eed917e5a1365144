package manifest

// PodDisruptionBudget is policy/v1 PodDisruptionBudget: how many of the
// replicas it selects voluntary evictions (a drained node, preemption by
// a higher priority) may take down at once.
type PodDisruptionBudget struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta              `json:"metadata"`
	Spec     PodDisruptionBudgetSpec `json:"spec"`
}

// PodDisruptionBudgetSpec is minAvailable or maxUnavailable of the
// replicas selector matches in the budget's namespace.
type PodDisruptionBudgetSpec struct {
	Selector                   *LabelSelector `json:"selector,omitempty"`
	MinAvailable               *IntOrString   `json:"minAvailable,omitempty"`
	MaxUnavailable             *IntOrString   `json:"maxUnavailable,omitempty"`
	UnhealthyPodEvictionPolicy *string        `json:"unhealthyPodEvictionPolicy,omitempty"`
}

// AnnotationDrain "true" on a Node policy drains the node: cordoned, and
// every replica but DaemonSets' evicted within its disruption budgets.
const AnnotationDrain = "driftless.dev/drain"

// AnnotationSuspended "true" on a workload (driftless suspend) freezes it:
// its placement and templates stay as they are until it is resumed.
const AnnotationSuspended = "driftless.dev/suspended"

// Budget is one PodDisruptionBudget, validated.
type Budget struct {
	Namespace, Name string
	// Selector selects replicas by their template's labels (nil: none,
	// empty: every replica of the namespace, as in policy/v1).
	Selector       *LabelSelector
	MinAvailable   *IntOrString
	MaxUnavailable *IntOrString
}

// Key names a budget as "namespace/name".
func (b Budget) Key() string { return b.Namespace + "/" + b.Name }

// Selects reports whether the budget covers w's replicas.
func (b Budget) Selects(w *Workload) bool {
	return b.Selector != nil && w.Namespace == b.Namespace && b.Selector.Matches(w.Template.Metadata.Labels)
}

// Allowed is how many of the budget's replicas may be evicted now, of
// expected replicas (the workloads' desired counts) of which healthy are
// ready; Kubernetes' disruptionsAllowed.
func (b Budget) Allowed(expected, healthy int) int {
	var n int
	switch {
	case b.MinAvailable != nil:
		min, _ := b.MinAvailable.ScaledValue(expected, true)
		n = healthy - min
	case b.MaxUnavailable != nil:
		max, _ := b.MaxUnavailable.ScaledValue(expected, true)
		n = max - (expected - healthy)
	}
	if n < 0 {
		return 0
	}
	return n
}

func (s *Set) addPodDisruptionBudget(d *document, o *PodDisruptionBudget) []Problem {
	var probs []Problem
	sp := o.Spec
	switch {
	case sp.MinAvailable != nil && sp.MaxUnavailable != nil:
		probs = append(probs, problemAt(d, "spec.maxUnavailable", "minAvailable and maxUnavailable cannot both be set"))
	case sp.MinAvailable == nil && sp.MaxUnavailable == nil:
		probs = append(probs, problemAt(d, "spec.minAvailable", "one of minAvailable or maxUnavailable is required"))
	}
	for f, v := range map[string]*IntOrString{"spec.minAvailable": sp.MinAvailable, "spec.maxUnavailable": sp.MaxUnavailable} {
		if v == nil {
			continue
		}
		if n, err := v.ScaledValue(100, true); err != nil || n < 0 || (v.IsString && n > 100) {
			probs = append(probs, valueProblem(d, f, v.String(), "must be a non-negative integer or a percentage up to 100%"))
		}
	}
	if sel := sp.Selector; sel != nil {
		probs = append(probs, validateLabels(d, sel.MatchLabels, "spec.selector.matchLabels")...)
		probs = append(probs, validateSelectorExpressions(d, sel.MatchExpressions, "spec.selector")...)
	}
	if p := sp.UnhealthyPodEvictionPolicy; p != nil && *p != "IfHealthyBudget" && *p != "AlwaysAllow" {
		probs = append(probs, valueProblem(d, "spec.unhealthyPodEvictionPolicy", *p, "must be IfHealthyBudget or AlwaysAllow"))
	}
	if len(probs) > 0 {
		return probs
	}
	if sp.Selector == nil {
		s.Warnings = append(s.Warnings, problemAt(d, "spec.selector", "no selector: the budget selects no replica"))
	}
	s.Budgets = append(s.Budgets, Budget{Namespace: o.Metadata.Namespace, Name: o.Metadata.Name, Selector: sp.Selector, MinAvailable: sp.MinAvailable, MaxUnavailable: sp.MaxUnavailable})
	return nil
}
