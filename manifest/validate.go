package manifest

import (
	"k8s.io/apimachinery/pkg/util/validation"

	"fmt"
	"strings"
)

func problemAt(d *document, field, msg string) Problem {
	return Problem{File: d.file, Line: d.lineOf(field), Field: field, Message: msg}
}

func valueProblem(d *document, field, value, msg string) Problem {
	return Problem{File: d.file, Line: d.lineOf(field), Field: field, Value: value, HasValue: true, Message: msg}
}

// Names, keys and values are checked by Kubernetes' own rules
// (apimachinery's util/validation), and refused in its words.

func isConfigKey(k string) bool        { return len(validation.IsConfigMapKey(k)) == 0 }
func isQualifiedName(k string) bool    { return len(validation.IsQualifiedName(k)) == 0 }
func isDNS1123Label(s string) bool     { return len(validation.IsDNS1123Label(s)) == 0 }
func isLabelValue(v string) bool       { return len(validation.IsValidLabelValue(v)) == 0 }
func isDNS1123Subdomain(s string) bool { return len(validation.IsDNS1123Subdomain(s)) == 0 }

// invalid is the problem of value at field per Kubernetes' messages
// (errs, from util/validation), or nil when errs is empty.
func invalid(d *document, field, value string, errs []string) []Problem {
	if len(errs) == 0 {
		return nil
	}
	return []Problem{valueProblem(d, field, value, strings.Join(errs, "; "))}
}

func validateMeta(d *document, m *ObjectMeta, clusterScoped bool) []Problem {
	var probs []Problem
	if m.Name == "" {
		probs = append(probs, problemAt(d, "metadata.name", "required"))
	} else {
		probs = append(probs, invalid(d, "metadata.name", m.Name, validation.IsDNS1123Subdomain(m.Name))...)
	}
	if clusterScoped {
		if m.Namespace != "" {
			probs = append(probs, valueProblem(d, "metadata.namespace", m.Namespace, "a cluster-scoped object has no namespace"))
		}
	} else {
		if m.Namespace == "" {
			m.Namespace = "default"
		} else {
			probs = append(probs, invalid(d, "metadata.namespace", m.Namespace, validation.IsDNS1123Label(m.Namespace))...)
		}
	}
	probs = append(probs, validateLabels(d, m.Labels, "metadata.labels")...)
	for k := range m.Annotations {
		probs = append(probs, invalid(d, "metadata.annotations."+k, k, validation.IsQualifiedName(k))...)
	}
	return probs
}

func validateLabels(d *document, labels map[string]string, field string) []Problem {
	var probs []Problem
	for k, v := range labels {
		probs = append(probs, invalid(d, field+"."+k, k, validation.IsQualifiedName(k))...)
		probs = append(probs, invalid(d, field+"."+k, v, validation.IsValidLabelValue(v))...)
	}
	return probs
}

func validateReplicas(d *document, r *int32, field string) []Problem {
	if r != nil && *r < 0 {
		return []Problem{valueProblem(d, field, fmt.Sprint(*r), "must be >= 0")}
	}
	return nil
}

// validateController checks what apps/v1 controllers share: a selector
// that matches the template's labels, and the pod spec.
func validateController(d *document, sel *LabelSelector, t *PodTemplateSpec, field string) []Problem {
	var probs []Problem
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		probs = append(probs, problemAt(d, field+".selector", "required (apps/v1)"))
	} else {
		probs = append(probs, validateLabels(d, sel.MatchLabels, field+".selector.matchLabels")...)
		if !sel.Matches(t.Metadata.Labels) {
			probs = append(probs, problemAt(d, field+".template.metadata.labels", "must match spec.selector"))
		}
		probs = append(probs, validateSelectorExpressions(d, sel.MatchExpressions, field+".selector")...)
	}
	if t.Spec.RestartPolicy != RestartAlways {
		probs = append(probs, valueProblem(d, field+".template.spec.restartPolicy", t.Spec.RestartPolicy, "must be Always"))
	}
	probs = append(probs, validateTemplateLabels(d, t.Metadata, field+".template.metadata")...)
	probs = append(probs, validatePodSpec(d, &t.Spec, field+".template.spec")...)
	return probs
}

func validateTemplateLabels(d *document, m ObjectMeta, field string) []Problem {
	var probs []Problem
	probs = append(probs, validateLabels(d, m.Labels, field+".labels")...)
	// A template's name and namespace are ignored, as Kubernetes
	// ignores them (exported and hand-written manifests carry them).
	return probs
}

// validateSelectorExpressions checks the set-based terms of a label
// selector.
func validateSelectorExpressions(d *document, exprs []LabelSelectorRequirement, field string) []Problem {
	var probs []Problem
	for i, e := range exprs {
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
		default:
			probs = append(probs, valueProblem(d, p+".operator", e.Operator, "must be In, NotIn, Exists or DoesNotExist"))
		}
	}
	return probs
}
