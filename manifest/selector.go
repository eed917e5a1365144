package manifest

import "slices"

// Matches reports whether labels satisfy the selector, with Kubernetes'
// semantics (apimachinery's labels.Selector, checked against it by a
// property test): every matchLabels pair must be present with that value,
// every expression hold (In: present with one of the values; NotIn: absent
// or none of them; Exists; DoesNotExist). An empty selector matches
// everything, a nil one nothing, an unknown operator nothing.
// Validation, the scheduler (affinity, spread) and every other reader of a
// selector use this one function.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, has := labels[e.Key]
		switch e.Operator {
		case "In":
			if !has || !slices.Contains(e.Values, v) {
				return false
			}
		case "NotIn":
			if has && slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}
