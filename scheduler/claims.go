package scheduler

import (
	"fmt"
	"strconv"
)

// Reasons of replicas whose claims keep them Pending.
const (
	ReasonClaimNotFound = "persistentvolumeclaim not found"
	ReasonClaimsSplit   = "its claims are bound to different nodes"
)

// claimsAllow reports whether replica idx of w may stay on node i as far
// as its claims go: none of them is bound to another node.
func (s *sched) claimsAllow(w *cworkload, idx int, i int32) bool {
	if !w.claims {
		return true
	}
	for _, rc := range w.w.ReplicaClaims(idx) {
		if rc.Missing || rc.Claim.SharedPath != "" {
			continue
		}
		if n, ok := s.claimNodes[rc.Claim.Key()]; ok && n != s.nodes[i].Name {
			return false
		}
	}
	return true
}

// useClaims records that replica idx of w is on node i: its node-local
// claims not bound yet are bound there.
func (s *sched) useClaims(w *cworkload, idx int, i int32) {
	if !w.claims {
		return
	}
	for _, rc := range w.w.ReplicaClaims(idx) {
		if rc.Missing {
			continue
		}
		key := rc.Claim.Key()
		if _, ok := s.claims.Users[key]; !ok {
			s.claims.Users[key] = w.w.Ref
		}
		if rc.Claim.SharedPath != "" {
			s.claims.Shared[key] = true
			continue
		}
		if _, ok := s.claimNodes[key]; !ok {
			s.claimNodes[key] = s.nodes[i].Name
			s.claims.Bound[key] = s.nodes[i].Name
			s.volUsed[i] += rc.Claim.Storage.Value()
		}
	}
}

// claimNode is where replica idx of w must go when its claims decide it:
// pinned reports that they do, and then the node (or -1 and why not).
func (s *sched) claimNode(w *cworkload, idx int) (node int32, reasons []string, pinned bool) {
	want, claim := "", ""
	for _, rc := range w.w.ReplicaClaims(idx) {
		if rc.Missing {
			return -1, []string{fmt.Sprintf("%s: %s", ReasonClaimNotFound, strconv.Quote(rc.Claim.Name))}, true
		}
		if rc.Claim.SharedPath != "" {
			continue
		}
		n, ok := s.claimNodes[rc.Claim.Key()]
		if !ok {
			continue
		}
		if want != "" && n != want {
			return -1, []string{fmt.Sprintf("%s (%s on %s, %s on %s)", ReasonClaimsSplit, claim, want, rc.Claim.Name, n)}, true
		}
		want, claim = n, rc.Claim.Name
	}
	if want == "" {
		return -1, nil, false
	}
	i, ok := s.byName[want]
	if !ok {
		return -1, []string{fmt.Sprintf("volume %s is on node %s, which is gone", claim, want)}, true
	}
	r := s.staticReject(w, i, false)
	if r == "" {
		r = s.placementReject(w, i)
	}
	if r == "" {
		r = s.volumeReject(w, idx, i)
	}
	if r != "" {
		return -1, []string{fmt.Sprintf("volume %s is on node %s: %s", claim, want, r)}, true
	}
	return i, nil, true
}

// ReasonVolumeSpace is why a node cannot take a replica's new claims.
const ReasonVolumeSpace = "insufficient volume space"

// volumeReject checks the replica's claims not bound yet against what the
// node's volumes directory holds besides the claims bound there.
func (s *sched) volumeReject(w *cworkload, idx int, i int32) string {
	if !w.claims {
		return ""
	}
	q, ok := s.nodes[i].Allocatable[ResourceVolumes]
	if !ok {
		return ""
	}
	var need int64
	for _, rc := range w.w.ReplicaClaims(idx) {
		if rc.Missing || rc.Claim.SharedPath != "" {
			continue
		}
		if _, bound := s.claimNodes[rc.Claim.Key()]; !bound {
			need += rc.Claim.Storage.Value()
		}
	}
	if need > 0 && s.volUsed[i]+need > q.Value() {
		return ReasonVolumeSpace
	}
	return ""
}
