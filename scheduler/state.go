package scheduler

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"driftless.dev/driftless/manifest"
)

// sched is the state of one Schedule call: nodes in name order, what is
// placed on them, and each workload compiled once. Node indices are int32
// positions in nodes.
type sched struct {
	nodes    []Node
	byName   map[string]int32
	nodeHash []uint64
	policy   Policy
	now      time.Time // the leader's clock (tolerationSeconds)
	toFind   int       // feasible nodes to score per replica

	// Resources: ids by name, allocatable and used in milli-units,
	// node-major (node*len(res)+r); alloc < 0 is unlimited.
	res   []string
	resID map[string]int
	alloc []int64
	used  []int64
	count []int32 // replicas per node
	ports []map[hostPort]bool

	// Topology: a key id per label key used, each node's domain per key
	// (-1: no such label).
	keyID   map[string]int
	domains [][]int32
	nDom    []int
	zone    int // key id of topology.kubernetes.io/zone
	order   []int32

	// Replica counts per domain of the replicas a selector matches.
	podSets  []podSet
	psID     map[string]int
	counters []counter
	ctrID    map[[2]int]int

	statics map[string]*static
	ws      []*cworkload

	// Claims: the node of every node-local claim bound so far (committed
	// and bound this pass), and what this pass decided.
	claimNodes map[string]string
	claims     Claims
	volUsed    []int64 // per node, bytes of the claims bound there

	// Disruptions: the bindings kept by pass 1 (by workload), which
	// workloads pass 2 placed, what each budget still allows, why
	// replicas were preempted or stay despite an eviction.
	kept      []map[int]int32
	done      []bool
	budgets   []budgetState
	budgetsOf [][]int
	preempted map[manifest.Ref]map[int]string
	// minPriority is the lowest priority of any workload: only a replica
	// above it may preempt.
	minPriority int32
	blocked     map[manifest.Ref]map[int]string

	// Scratch for the workload being placed.
	own     []int32 // its replicas per node
	ownZone []int32 // its replicas per zone
}

type hostPort struct {
	proto, ip string
	port      int32
}

// podSet is the replicas a term selects: a selector within namespaces, or
// exactly one workload's replicas (owner >= 0).
type podSet struct {
	ns    []string
	sel   *manifest.LabelSelector
	owner int
	ctrs  []int
}

type counter struct {
	key    int
	counts []int32 // per domain
	total  int
}

// cworkload is a workload compiled for placement.
type cworkload struct {
	w       *manifest.Workload
	claims  bool  // its replicas mount persistent volume claims
	indexes []int // the replica indexes its request asks for (nil: 0..Replicas-1)
	idx     int
	st      *static
	req     []int64 // per resource id, milli-units
	ports   []hostPort
	inc     []int // counters its replicas count in
	anti    []int // required anti-affinity: no matching replica in the domain
	sym     []int // others' required anti-affinity that selects it
	aff     []affTerm
	hard    []spreadTerm
	soft    []spreadTerm
	pref    []prefTerm
	prefWt  float64
}

type affTerm struct {
	ctr  int
	self bool // it matches its own term: the first replica may go anywhere
}

type spreadTerm struct {
	ctr     int
	maxSkew int32
	self    int32 // 1 when its replicas count towards the constraint
	doms    []int32
	min     int32
}

type prefTerm struct {
	ctr    int
	weight float64 // negative for anti-affinity
}

// static is what does not change during a pass for one combination of
// nodeSelector, node affinity and tolerations: the feasible nodes, in
// zone-interleaved order, their static score, and why the others fail.
type static struct {
	feasible []int32
	score    []float32 // parallel to feasible
	ok       []bool    // per node
	reasons  map[string]int
}

func newSched(in Input) *sched {
	s := &sched{
		byName:  make(map[string]int32, len(in.Nodes)),
		policy:  in.Policy,
		now:     in.Now,
		resID:   map[string]int{},
		keyID:   map[string]int{},
		psID:    map[string]int{},
		ctrID:   map[[2]int]int{},
		statics: map[string]*static{},

		claimNodes: make(map[string]string, len(in.ClaimNodes)),
		claims:     Claims{Bound: map[string]string{}, Shared: map[string]bool{}, Users: map[string]manifest.Ref{}},
	}
	for k, v := range in.ClaimNodes {
		s.claimNodes[k] = v
	}

	s.nodes = append([]Node(nil), in.Nodes...)
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].Name < s.nodes[j].Name })
	s.volUsed = make([]int64, len(s.nodes))
	for i, n := range s.nodes {
		s.volUsed[i] = in.VolumesUsed[n.Name]
	}
	for i := range s.nodes {
		s.byName[s.nodes[i].Name] = int32(i)
		h := fnv.New64a()
		h.Write([]byte(s.nodes[i].Name))
		s.nodeHash = append(s.nodeHash, h.Sum64())
	}
	s.toFind = nodesToFind(len(s.nodes), in.PercentageOfNodesToScore)

	ws := make([]manifest.Workload, len(in.Workloads))
	copy(ws, in.Workloads)
	sort.Slice(ws, func(i, j int) bool { return refLess(ws[i].Ref, ws[j].Ref) })

	// Resource ids: every allocatable and requested resource, sorted.
	names := map[string]bool{}
	for _, n := range s.nodes {
		for r := range n.Allocatable {
			names[r] = true
		}
	}
	reqs := make([]map[string]int64, len(ws))
	for i := range ws {
		reqs[i] = requests(&ws[i])
		for r := range reqs[i] {
			names[r] = true
		}
	}
	for r := range names {
		s.res = append(s.res, r)
	}
	sort.Strings(s.res)
	for i, r := range s.res {
		s.resID[r] = i
	}
	R := len(s.res)
	s.alloc = make([]int64, len(s.nodes)*R)
	s.used = make([]int64, len(s.nodes)*R)
	for i, n := range s.nodes {
		for r := 0; r < R; r++ {
			s.alloc[i*R+r] = -1
			if q, ok := n.Allocatable[s.res[r]]; ok {
				s.alloc[i*R+r] = q.MilliValue()
			}
		}
	}
	s.count = make([]int32, len(s.nodes))
	s.ports = make([]map[hostPort]bool, len(s.nodes))
	s.own = make([]int32, len(s.nodes))

	// Zones, and the scan order: nodes of each zone in name order, zones
	// interleaved, so that any window of the order samples every zone.
	s.zone = s.key(zoneKey)
	s.ownZone = make([]int32, s.nDom[s.zone])
	byZone := make([][]int32, s.nDom[s.zone]+1)
	for i := range s.nodes {
		z := s.domains[s.zone][i] + 1 // zoneless nodes form their own list
		byZone[z] = append(byZone[z], int32(i))
	}
	for k := 0; len(s.order) < len(s.nodes); k++ {
		for _, l := range byZone {
			if k < len(l) {
				s.order = append(s.order, l[k])
			}
		}
	}

	for i := range ws {
		s.ws = append(s.ws, s.compile(&ws[i], i, reqs[i]))
	}
	s.matchPodSets()
	return s
}

// nodesToFind is kube-scheduler's adaptive percentageOfNodesToScore.
func nodesToFind(n, pct int) int {
	const minFeasible = 100
	if n < minFeasible || pct >= 100 {
		return n
	}
	if pct <= 0 {
		pct = 50 - n/125
		if pct < 5 {
			pct = 5
		}
	}
	k := n * pct / 100
	if k < minFeasible {
		k = minFeasible
	}
	return k
}

// key returns the id of a topology key, computing every node's domain.
func (s *sched) key(k string) int {
	if id, ok := s.keyID[k]; ok {
		return id
	}
	id := len(s.domains)
	s.keyID[k] = id
	doms := make([]int32, len(s.nodes))
	vals := map[string]int32{}
	for i := range s.nodes {
		v, ok := nodeLabel(&s.nodes[i], k)
		if !ok {
			doms[i] = -1
			continue
		}
		d, seen := vals[v]
		if !seen {
			d = int32(len(vals))
			vals[v] = d
		}
		doms[i] = d
	}
	s.domains = append(s.domains, doms)
	s.nDom = append(s.nDom, len(vals))
	return id
}

// counterFor returns the counter of the replicas ps selects per domain of
// key k.
func (s *sched) counterFor(ps podSet, k string) int {
	kid := s.key(k)
	sig := podSetSig(ps)
	pid, ok := s.psID[sig]
	if !ok {
		pid = len(s.podSets)
		s.psID[sig] = pid
		s.podSets = append(s.podSets, ps)
	}
	if c, ok := s.ctrID[[2]int{pid, kid}]; ok {
		return c
	}
	c := len(s.counters)
	s.ctrID[[2]int{pid, kid}] = c
	s.counters = append(s.counters, counter{key: kid, counts: make([]int32, s.nDom[kid])})
	s.podSets[pid].ctrs = append(s.podSets[pid].ctrs, c)
	return c
}

func podSetSig(ps podSet) string {
	if ps.owner >= 0 {
		return fmt.Sprintf("owner:%d", ps.owner)
	}
	b, _ := json.Marshal(ps.sel) // plain data: cannot fail
	ns := append([]string(nil), ps.ns...)
	sort.Strings(ns)
	return strings.Join(ns, ",") + "|" + string(b)
}

func termPodSet(w *manifest.Workload, t manifest.PodAffinityTerm) podSet {
	ns := t.Namespaces
	if len(ns) == 0 {
		ns = []string{w.Namespace}
	}
	return podSet{ns: ns, sel: t.LabelSelector, owner: -1}
}

func (ps *podSet) matches(s *sched, w *cworkload) bool {
	if ps.owner >= 0 {
		return ps.owner == w.idx
	}
	return contains(ps.ns, w.w.Namespace) && ps.sel.Matches(w.w.Template.Metadata.Labels)
}

// compile turns a workload into ids and counters.
func (s *sched) compile(w *manifest.Workload, idx int, req map[string]int64) *cworkload {
	cw := &cworkload{w: w, idx: idx, req: make([]int64, len(s.res)), claims: w.HasClaims()}
	for r, q := range req {
		cw.req[s.resID[r]] = q
	}
	cw.ports = hostPorts(w)
	cw.st = s.staticFor(cw)
	spec := &w.Template.Spec
	self := func(ps podSet) bool { return ps.matches(s, cw) }
	if a := spec.Affinity; a != nil {
		if pa := a.PodAntiAffinity; pa != nil {
			for _, t := range pa.Required {
				cw.anti = append(cw.anti, s.counterFor(termPodSet(w, t), t.TopologyKey))
				// Symmetry: replicas this term selects may not come near
				// this workload's replicas either.
				s.counterFor(podSet{owner: idx}, t.TopologyKey)
			}
			for _, t := range pa.Preferred {
				cw.pref = append(cw.pref, prefTerm{s.counterFor(termPodSet(w, t.PodAffinityTerm), t.PodAffinityTerm.TopologyKey), -float64(t.Weight)})
				cw.prefWt += float64(t.Weight)
			}
		}
		if pa := a.PodAffinity; pa != nil {
			for _, t := range pa.Required {
				ps := termPodSet(w, t)
				cw.aff = append(cw.aff, affTerm{ctr: s.counterFor(ps, t.TopologyKey), self: self(ps)})
			}
			for _, t := range pa.Preferred {
				cw.pref = append(cw.pref, prefTerm{s.counterFor(termPodSet(w, t.PodAffinityTerm), t.PodAffinityTerm.TopologyKey), float64(t.Weight)})
				cw.prefWt += float64(t.Weight)
			}
		}
	}
	for _, c := range spec.TopologySpreadConstraints {
		ps := podSet{ns: []string{w.Namespace}, sel: c.LabelSelector, owner: -1}
		st := spreadTerm{ctr: s.counterFor(ps, c.TopologyKey), maxSkew: c.MaxSkew}
		if self(ps) {
			st.self = 1
		}
		if c.WhenUnsatisfiable == "DoNotSchedule" {
			cw.hard = append(cw.hard, st)
		} else {
			cw.soft = append(cw.soft, st)
		}
	}
	return cw
}

// matchPodSets finds, once, the counters each workload's replicas count
// in, and the anti-affinity of others that selects it.
func (s *sched) matchPodSets() {
	type antiOwner struct {
		ps    podSet
		owner int
		key   string
	}
	var owners []antiOwner
	for _, w := range s.ws {
		if a := w.w.Template.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
			for _, t := range a.PodAntiAffinity.Required {
				owners = append(owners, antiOwner{termPodSet(w.w, t), w.idx, t.TopologyKey})
			}
		}
	}
	for _, w := range s.ws {
		for pi := range s.podSets {
			if s.podSets[pi].matches(s, w) {
				w.inc = append(w.inc, s.podSets[pi].ctrs...)
			}
		}
		for _, o := range owners {
			if o.owner != w.idx && o.ps.matches(s, w) {
				w.sym = append(w.sym, s.counterFor(podSet{owner: o.owner}, o.key))
			}
		}
	}
}

// staticFor computes, or reuses, the static feasibility of w's node
// constraints.
func (s *sched) staticFor(w *cworkload) *static {
	spec := &w.w.Template.Spec
	var na *manifest.NodeAffinity
	if spec.Affinity != nil {
		na = spec.Affinity.NodeAffinity
	}
	b, _ := json.Marshal(struct {
		S map[string]string
		A *manifest.NodeAffinity
		T []manifest.Toleration
	}{spec.NodeSelector, na, spec.Tolerations}) // plain data: cannot fail
	if st, ok := s.statics[string(b)]; ok {
		return st
	}
	st := &static{ok: make([]bool, len(s.nodes)), reasons: map[string]int{}}
	var prefTotal float64
	if na != nil {
		for _, p := range na.Preferred {
			prefTotal += float64(p.Weight)
		}
	}
	for _, i := range s.order {
		if r := s.staticReject(w, i, false); r != "" {
			st.reasons[r]++
			continue
		}
		st.ok[i] = true
		st.feasible = append(st.feasible, i)
		n := &s.nodes[i]
		// Untolerated PreferNoSchedule taints cost up to 3 points, as
		// kube-scheduler weighs TaintToleration; preferred node
		// affinity earns up to 2.
		untol := 0
		for _, t := range n.Taints {
			if t.Effect == "PreferNoSchedule" && !tolerated(spec.Tolerations, t) {
				untol++
			}
		}
		sc := 3 / float64(1+untol)
		if prefTotal > 0 {
			var got float64
			for _, p := range na.Preferred {
				if selectorTermMatches(p.Preference, n) {
					got += float64(p.Weight)
				}
			}
			sc += 2 * got / prefTotal
		}
		st.score = append(st.score, float32(sc))
	}
	s.statics[string(b)] = st
	return st
}

// requests is what one replica asks of its node (manifest's
// EffectiveRequests: init containers and sidecars counted as Kubernetes
// counts them).
func requests(w *manifest.Workload) map[string]int64 {
	return w.Template.Spec.EffectiveRequests()
}

// hostPorts are the node ports one replica publishes (manifest's
// HostPorts: app, init and sidecar containers).
func hostPorts(w *manifest.Workload) []hostPort {
	var out []hostPort
	for _, p := range w.Template.Spec.HostPorts() {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		out = append(out, hostPort{p.Protocol, ip, p.HostPort})
	}
	return out
}

func refLess(a, b manifest.Ref) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}
