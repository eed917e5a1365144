package manifest

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"
)

// validateScheduling checks tolerations, affinity and topology spread
// constraints with the rules of the Kubernetes API server.
func validateScheduling(d *document, s *PodSpec, field string) []Problem {
	var probs []Problem
	for i, t := range s.Tolerations {
		p := fmt.Sprintf("%s.tolerations[%d]", field, i)
		if t.Key != "" && !isQualifiedName(t.Key) {
			probs = append(probs, valueProblem(d, p+".key", t.Key, "must be a qualified name"))
		}
		switch t.Operator {
		case "", "Equal":
			if t.Key == "" {
				probs = append(probs, problemAt(d, p+".operator", "must be Exists when key is empty"))
			}
			if !isLabelValue(t.Value) {
				probs = append(probs, valueProblem(d, p+".value", t.Value, "invalid label value: at most 63 characters [-A-Za-z0-9_.], starting and ending alphanumeric"))
			}
		case "Exists":
			if t.Value != "" {
				probs = append(probs, valueProblem(d, p+".value", t.Value, "must be empty when operator is Exists"))
			}
		default:
			probs = append(probs, valueProblem(d, p+".operator", t.Operator, "must be Equal or Exists"))
		}
		switch t.Effect {
		case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			probs = append(probs, valueProblem(d, p+".effect", t.Effect, "must be NoSchedule, PreferNoSchedule or NoExecute"))
		}
		if t.TolerationSeconds != nil && t.Effect != "NoExecute" {
			probs = append(probs, valueProblem(d, p+".effect", t.Effect, "must be NoExecute when tolerationSeconds is set"))
		}
	}
	if a := s.Affinity; a != nil {
		if na := a.NodeAffinity; na != nil {
			p := field + ".affinity.nodeAffinity"
			if r := na.Required; r != nil {
				rp := p + ".requiredDuringSchedulingIgnoredDuringExecution"
				if len(r.NodeSelectorTerms) == 0 {
					probs = append(probs, problemAt(d, rp+".nodeSelectorTerms", "must have at least one term"))
				}
				for i, t := range r.NodeSelectorTerms {
					probs = append(probs, validateNodeSelectorTerm(d, t, fmt.Sprintf("%s.nodeSelectorTerms[%d]", rp, i))...)
				}
			}
			for i, t := range na.Preferred {
				tp := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", p, i)
				probs = append(probs, validateWeight(d, t.Weight, tp+".weight")...)
				probs = append(probs, validateNodeSelectorTerm(d, t.Preference, tp+".preference")...)
			}
		}
		probs = append(probs, validatePodAffinity(d, a.PodAffinity, field+".affinity.podAffinity")...)
		probs = append(probs, validatePodAffinity(d, a.PodAntiAffinity, field+".affinity.podAntiAffinity")...)
	}
	seen := map[string]bool{}
	for i, c := range s.TopologySpreadConstraints {
		p := fmt.Sprintf("%s.topologySpreadConstraints[%d]", field, i)
		if c.MaxSkew <= 0 {
			probs = append(probs, valueProblem(d, p+".maxSkew", fmt.Sprint(c.MaxSkew), "must be greater than 0"))
		}
		if c.TopologyKey == "" {
			probs = append(probs, problemAt(d, p+".topologyKey", "required"))
		} else if !isQualifiedName(c.TopologyKey) {
			probs = append(probs, valueProblem(d, p+".topologyKey", c.TopologyKey, "must be a qualified name"))
		}
		switch c.WhenUnsatisfiable {
		case "DoNotSchedule", "ScheduleAnyway":
		case "":
			probs = append(probs, problemAt(d, p+".whenUnsatisfiable", "required (DoNotSchedule or ScheduleAnyway)"))
		default:
			probs = append(probs, valueProblem(d, p+".whenUnsatisfiable", c.WhenUnsatisfiable, "must be DoNotSchedule or ScheduleAnyway"))
		}
		if k := c.TopologyKey + "|" + c.WhenUnsatisfiable; seen[k] {
			probs = append(probs, problemAt(d, p, "duplicate topologyKey and whenUnsatisfiable pair"))
		} else {
			seen[k] = true
		}
		probs = append(probs, validateSelector(d, c.LabelSelector, p+".labelSelector")...)
	}
	return probs
}

func validateSelector(d *document, sel *LabelSelector, field string) []Problem {
	if sel == nil {
		return nil
	}
	probs := validateLabels(d, sel.MatchLabels, field+".matchLabels")
	return append(probs, validateSelectorExpressions(d, sel.MatchExpressions, field)...)
}

func validateWeight(d *document, w int32, field string) []Problem {
	if w < 1 || w > 100 {
		return []Problem{valueProblem(d, field, fmt.Sprint(w), "must be in the range 1-100")}
	}
	return nil
}

func validateNodeSelectorTerm(d *document, t NodeSelectorTerm, field string) []Problem {
	var probs []Problem
	for i, e := range t.MatchExpressions {
		p := fmt.Sprintf("%s.matchExpressions[%d]", field, i)
		if !isQualifiedName(e.Key) {
			probs = append(probs, valueProblem(d, p+".key", e.Key, "must be a qualified name"))
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				probs = append(probs, problemAt(d, p+".values", "required for In and NotIn"))
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) > 0 {
				probs = append(probs, problemAt(d, p+".values", "must be empty for Exists and DoesNotExist"))
			}
		case "Gt", "Lt":
			if len(e.Values) != 1 {
				probs = append(probs, problemAt(d, p+".values", "must have exactly one value for Gt and Lt"))
			} else if _, err := strconv.ParseInt(e.Values[0], 10, 64); err != nil {
				probs = append(probs, valueProblem(d, p+".values[0]", e.Values[0], "must be an integer for Gt and Lt"))
			}
		default:
			probs = append(probs, valueProblem(d, p+".operator", e.Operator, "must be In, NotIn, Exists, DoesNotExist, Gt or Lt"))
		}
	}
	for i, e := range t.MatchFields {
		p := fmt.Sprintf("%s.matchFields[%d]", field, i)
		if e.Key != "metadata.name" {
			probs = append(probs, valueProblem(d, p+".key", e.Key, "must be metadata.name"))
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) != 1 {
				probs = append(probs, problemAt(d, p+".values", "must have exactly one value"))
			}
		default:
			probs = append(probs, valueProblem(d, p+".operator", e.Operator, "must be In or NotIn"))
		}
	}
	return probs
}

func validatePodAffinity(d *document, a *PodAffinity, field string) []Problem {
	if a == nil {
		return nil
	}
	var probs []Problem
	for i, t := range a.Required {
		probs = append(probs, validatePodAffinityTerm(d, t, fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution[%d]", field, i))...)
	}
	for i, t := range a.Preferred {
		p := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", field, i)
		probs = append(probs, validateWeight(d, t.Weight, p+".weight")...)
		probs = append(probs, validatePodAffinityTerm(d, t.PodAffinityTerm, p+".podAffinityTerm")...)
	}
	return probs
}

func validatePodAffinityTerm(d *document, t PodAffinityTerm, field string) []Problem {
	var probs []Problem
	if t.TopologyKey == "" {
		probs = append(probs, problemAt(d, field+".topologyKey", "required"))
	} else if !isQualifiedName(t.TopologyKey) {
		probs = append(probs, valueProblem(d, field+".topologyKey", t.TopologyKey, "must be a qualified name"))
	}
	for i, ns := range t.Namespaces {
		if !isDNS1123Label(ns) {
			probs = append(probs, invalid(d, fmt.Sprintf("%s.namespaces[%d]", field, i), ns, validation.IsDNS1123Label(ns))...)
		}
	}
	return append(probs, validateSelector(d, t.LabelSelector, field+".labelSelector")...)
}
