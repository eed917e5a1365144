package scheduler

import (
	"strconv"

	"driftless.dev/driftless/manifest"
)

// hostnameKey is the topology key of a single node; a node without the
// label is its own domain under its name.
const hostnameKey = "kubernetes.io/hostname"

// zoneKey is the label the default spreading scores by.
const zoneKey = "topology.kubernetes.io/zone"

// nodeLabel returns a node's label, with kubernetes.io/hostname defaulting
// to the node name.
func nodeLabel(n *Node, key string) (string, bool) {
	v, ok := n.Labels[key]
	if !ok && key == hostnameKey {
		return n.Name, true
	}
	return v, ok
}

// selectorTermMatches is a node selector term: every expression and field
// requirement must hold; a term with none matches no node.
func selectorTermMatches(t manifest.NodeSelectorTerm, n *Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for _, e := range t.MatchExpressions {
		v, has := nodeLabel(n, e.Key)
		if !requirementHolds(e, v, has) {
			return false
		}
	}
	for _, e := range t.MatchFields {
		// metadata.name is the only field (validated).
		if !requirementHolds(e, n.Name, true) {
			return false
		}
	}
	return true
}

func requirementHolds(e manifest.NodeSelectorRequirement, v string, has bool) bool {
	switch e.Operator {
	case "In":
		return has && contains(e.Values, v)
	case "NotIn":
		return !has || !contains(e.Values, v)
	case "Exists":
		return has
	case "DoesNotExist":
		return !has
	case "Gt", "Lt":
		if !has || len(e.Values) != 1 {
			return false
		}
		nv, err1 := strconv.ParseInt(v, 10, 64)
		ev, err2 := strconv.ParseInt(e.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if e.Operator == "Gt" {
			return nv > ev
		}
		return nv < ev
	}
	return false
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// tolerated reports whether any toleration matches the taint.
func tolerated(ts []manifest.Toleration, taint manifest.Taint) bool {
	for _, t := range ts {
		if t.Tolerates(taint) {
			return true
		}
	}
	return false
}
