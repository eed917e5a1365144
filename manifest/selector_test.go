package manifest

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"pgregory.net/rapid"
)

// apimachinery is the reference: the selector as Kubernetes builds it
// from a LabelSelector (metav1.LabelSelectorAsSelector's rules).
func apimachinery(s *LabelSelector) labels.Selector {
	if s == nil {
		return labels.Nothing()
	}
	sel := labels.NewSelector()
	for k, v := range s.MatchLabels {
		r, err := labels.NewRequirement(k, selection.Equals, []string{v})
		if err != nil {
			return labels.Nothing()
		}
		sel = sel.Add(*r)
	}
	for _, e := range s.MatchExpressions {
		var op selection.Operator
		switch e.Operator {
		case "In":
			op = selection.In
		case "NotIn":
			op = selection.NotIn
		case "Exists":
			op = selection.Exists
		case "DoesNotExist":
			op = selection.DoesNotExist
		default:
			return labels.Nothing()
		}
		vals := e.Values
		if op == selection.Exists || op == selection.DoesNotExist {
			vals = nil
		}
		r, err := labels.NewRequirement(e.Key, op, vals)
		if err != nil {
			return labels.Nothing()
		}
		sel = sel.Add(*r)
	}
	return sel
}

// Matches agrees with apimachinery's selector on every valid selector and
// label set.
func TestSelectorMatchesKubernetes(t *testing.T) {
	keys := []string{"app", "tier", "zone", "example.com/team"}
	vals := []string{"", "a", "b", "web"}
	rapid.Check(t, func(t *rapid.T) {
		lbl := map[string]string{}
		for _, k := range keys {
			if rapid.Bool().Draw(t, "has-"+k) {
				lbl[k] = rapid.SampledFrom(vals).Draw(t, "val-"+k)
			}
		}
		s := &LabelSelector{}
		if rapid.Bool().Draw(t, "matchLabels") {
			s.MatchLabels = map[string]string{}
			for i := rapid.IntRange(0, 2).Draw(t, "nml"); i > 0; i-- {
				s.MatchLabels[rapid.SampledFrom(keys).Draw(t, "mlk")] = rapid.SampledFrom(vals).Draw(t, "mlv")
			}
		}
		for i := rapid.IntRange(0, 3).Draw(t, "nexpr"); i > 0; i-- {
			e := LabelSelectorRequirement{Key: rapid.SampledFrom(keys).Draw(t, "ek"), Operator: rapid.SampledFrom([]string{"In", "NotIn", "Exists", "DoesNotExist"}).Draw(t, "op")}
			if e.Operator == "In" || e.Operator == "NotIn" {
				e.Values = rapid.SliceOfN(rapid.SampledFrom(vals), 1, 3).Draw(t, "ev")
			}
			s.MatchExpressions = append(s.MatchExpressions, e)
		}
		if rapid.IntRange(0, 9).Draw(t, "nil") == 0 {
			s = nil
		}
		want := apimachinery(s).Matches(labels.Set(lbl))
		if got := s.Matches(lbl); got != want {
			t.Fatalf("selector %+v on %v: Matches %v, Kubernetes %v", s, lbl, got, want)
		}
	})
}
