package scheduler

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"driftless.dev/driftless/manifest"
)

// claimDoc is a PersistentVolumeClaim document; class "" names none.
func claimDoc(name, class, mode string) string {
	cls := ""
	if class != "" {
		cls = "\n  storageClassName: " + class
	}
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s}
spec:
  accessModes: [%s]
  resources: {requests: {storage: 1Gi}}%s
`, name, mode, cls)
}

// claimDeployment is a Deployment whose replicas mount claim (and ask
// for half a CPU, so that node sizes tell in the score).
func claimDeployment(name string, replicas int, claim string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - name: main
        image: busybox
        resources: {requests: {cpu: 500m}}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: %[3]s}
`, name, replicas, claim)
}

// claimStatefulSet is a Parallel StatefulSet with a claim template data.
func claimStatefulSet(name string, replicas int) string {
	return claimStatefulSetPolicy(name, replicas, manifest.Parallel)
}

func claimStatefulSetPolicy(name string, replicas int, policy string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  podManagementPolicy: %[3]s
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - name: main
        image: busybox
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`, name, replicas, policy)
}

// twoClaimDeployment mounts claims one and two.
const twoClaimDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: main, image: busybox}
      volumes:
      - {name: one, persistentVolumeClaim: {claimName: one}}
      - {name: two, persistentVolumeClaim: {claimName: two}}
`

const sharedClassDoc = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: shared}
provisioner: driftless.dev/host-path
parameters: {path: /mnt/shared}
`

func loadClaimSet(t *testing.T, docs ...string) []manifest.Workload {
	t.Helper()
	set, err := manifest.Load([]manifest.File{{Path: "a.yaml", Data: []byte(strings.Join(docs, "---\n"))}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return set.Workloads
}

func cpuNode(name, cpu string, mod ...func(*Node)) Node {
	n := node(name, mod...)
	n.Allocatable = map[string]resource.Quantity{"cpu": resource.MustParse(cpu)}
	return n
}

func TestScheduleClaims(t *testing.T) {
	deploy := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	sts := manifest.Ref{Namespace: "default", Kind: "StatefulSet", Name: "web"}
	dead := func(n *Node) { n.Alive = false }
	// a has far more room than b: unpinned, a replica goes to a.
	bigA := []Node{cpuNode("a", "16"), cpuNode("b", "1")}
	// placedAt is a current placement of ref's replicas 0.. on nodes, of
	// the workload's template, running and ready.
	placedAt := func(ref manifest.Ref, nodes ...string) func([]manifest.Workload) map[manifest.Ref]manifest.Placement {
		return func(ws []manifest.Workload) map[manifest.Ref]manifest.Placement {
			hash := ""
			for _, w := range ws {
				if w.Ref == ref {
					hash = w.SpecHash
				}
			}
			p := manifest.Placement{Workload: ref, DesiredCommit: "c1", SpecHash: hash}
			for i, n := range nodes {
				p.Replicas = append(p.Replicas, manifest.ReplicaPlacement{Index: i, Node: n, SpecHash: hash,
					Status: &manifest.ReplicaStatus{Phase: "Running", Ready: true}})
			}
			return map[manifest.Ref]manifest.Placement{ref: p}
		}
	}

	cases := []struct {
		name       string
		docs       []string
		nodes      []Node
		claimNodes map[string]string
		current    func(ws []manifest.Workload) map[manifest.Ref]manifest.Placement
		ref        manifest.Ref
		wantNodes  []string // "" for a pending replica
		wantReason []string // substrings of every pending replica's reasons
		wantBound  map[string]string
		wantShared map[string]bool
		// sameNode: the replicas share one node (which is unknown).
		sameNode bool
	}{
		{
			name:      "unbound claim follows the score",
			docs:      []string{claimDoc("data", "", "ReadWriteOnce"), claimDeployment("web", 1, "data")},
			nodes:     bigA,
			ref:       deploy,
			wantNodes: []string{"a"},
			wantBound: map[string]string{"default/data": "a"},
		},
		{
			name:       "claim bound to b places the replica on b only",
			docs:       []string{claimDoc("data", "", "ReadWriteOnce"), claimDeployment("web", 1, "data")},
			nodes:      bigA,
			claimNodes: map[string]string{"default/data": "b"},
			ref:        deploy,
			wantNodes:  []string{"b"},
			wantBound:  map[string]string{},
		},
		{
			name:       "claim bound to a node not alive keeps the replica pending",
			docs:       []string{claimDoc("data", "", "ReadWriteOnce"), claimDeployment("web", 1, "data")},
			nodes:      []Node{cpuNode("a", "16"), cpuNode("b", "1", dead)},
			claimNodes: map[string]string{"default/data": "b"},
			ref:        deploy,
			wantNodes:  []string{""},
			wantReason: []string{"volume data", "node b", ReasonNotAlive},
			wantBound:  map[string]string{},
		},
		{
			name:       "claim bound to a node that is gone keeps the replica pending",
			docs:       []string{claimDoc("data", "", "ReadWriteOnce"), claimDeployment("web", 1, "data")},
			nodes:      []Node{cpuNode("a", "16")},
			claimNodes: map[string]string{"default/data": "b"},
			ref:        deploy,
			wantNodes:  []string{""},
			wantReason: []string{"volume data", "node b", "gone"},
			wantBound:  map[string]string{},
		},
		{
			name:       "claim bound to a node without room keeps the replica pending",
			docs:       []string{claimDoc("data", "", "ReadWriteOnce"), claimDeployment("web", 1, "data")},
			nodes:      []Node{cpuNode("a", "16"), cpuNode("b", "100m")},
			claimNodes: map[string]string{"default/data": "b"},
			ref:        deploy,
			wantNodes:  []string{""},
			wantReason: []string{"volume data", "node b", ReasonResources},
			wantBound:  map[string]string{},
		},
		{
			name:      "replicas sharing an unbound ReadWriteOnce claim share its node",
			docs:      []string{claimDoc("data", "", "ReadWriteOnce"), claimDeployment("web", 2, "data")},
			nodes:     []Node{node("a"), node("b"), node("c")},
			ref:       deploy,
			sameNode:  true,
			wantBound: nil, // checked against the replicas' node
		},
		{
			name:      "replica kept where its claim is draws the new one there",
			docs:      []string{claimDoc("data", "", "ReadWriteOnce"), claimDeployment("web", 2, "data")},
			nodes:     []Node{node("a"), node("b"), node("c")},
			current:   placedAt(deploy, "c"),
			ref:       deploy,
			wantNodes: []string{"c", "c"},
			wantBound: map[string]string{"default/data": "c"},
		},
		{
			name:       "claims bound to different nodes keep the replica pending",
			docs:       []string{claimDoc("one", "", "ReadWriteOnce"), claimDoc("two", "", "ReadWriteOnce"), twoClaimDeployment},
			nodes:      []Node{node("a"), node("b")},
			claimNodes: map[string]string{"default/one": "a", "default/two": "b"},
			ref:        deploy,
			wantNodes:  []string{""},
			wantReason: []string{ReasonClaimsSplit, "one on a", "two on b"},
			wantBound:  map[string]string{},
		},
		{
			name:       "second claim follows the first one's node",
			docs:       []string{claimDoc("one", "", "ReadWriteOnce"), claimDoc("two", "", "ReadWriteOnce"), twoClaimDeployment},
			nodes:      []Node{node("a"), node("b")},
			claimNodes: map[string]string{"default/two": "b"},
			ref:        deploy,
			wantNodes:  []string{"b"},
			wantBound:  map[string]string{"default/one": "b"},
		},
		{
			name:       "missing claim keeps every replica pending",
			docs:       []string{claimDeployment("web", 2, "nope")},
			nodes:      []Node{node("a"), node("b")},
			ref:        deploy,
			wantNodes:  []string{"", ""},
			wantReason: []string{ReasonClaimNotFound, `"nope"`},
			wantBound:  map[string]string{},
		},
		{
			name:      "StatefulSet binds each ordinal's claim to its node",
			docs:      []string{claimStatefulSet("web", 3)},
			nodes:     []Node{node("a"), node("b"), node("c")},
			ref:       sts,
			wantNodes: nil, // checked against the replicas' nodes
		},
		{
			name:  "StatefulSet ordinals go where their claims are",
			docs:  []string{claimStatefulSet("web", 3)},
			nodes: []Node{node("a"), node("b"), node("c")},
			claimNodes: map[string]string{
				"default/data-web-0": "c", "default/data-web-1": "c", "default/data-web-2": "a",
			},
			ref:       sts,
			wantNodes: []string{"c", "c", "a"},
			wantBound: map[string]string{},
		},
		{
			name:       "ordinal pinned to a dead node does not hold back the next",
			docs:       []string{claimStatefulSet("web", 2)},
			nodes:      []Node{node("a"), node("b", dead)},
			claimNodes: map[string]string{"default/data-web-0": "b"},
			ref:        sts,
			wantNodes:  []string{"", "a"},
			wantReason: []string{"volume data-web-0", "node b"},
			wantBound:  map[string]string{"default/data-web-1": "a"},
		},
		{
			name:       "StatefulSet replica kept where its claim is",
			docs:       []string{claimStatefulSet("web", 3)},
			nodes:      []Node{node("a"), node("b"), node("c")},
			claimNodes: map[string]string{"default/data-web-0": "c", "default/data-web-1": "a", "default/data-web-2": "b"},
			current:    placedAt(sts, "c", "a", "b"),
			ref:        sts,
			wantNodes:  []string{"c", "a", "b"},
			wantBound:  map[string]string{},
		},
		{
			name:      "StatefulSet replica kept binds its unbound claim where it runs",
			docs:      []string{claimStatefulSet("web", 2)},
			nodes:     []Node{node("a"), node("b"), node("c")},
			current:   placedAt(sts, "b", "b"),
			ref:       sts,
			wantNodes: []string{"b", "b"},
			wantBound: map[string]string{"default/data-web-0": "b", "default/data-web-1": "b"},
		},
		{
			name:       "StatefulSet replica on another node than its claim moves to the claim",
			docs:       []string{claimStatefulSet("web", 1)},
			nodes:      []Node{node("a"), node("b"), node("c")},
			claimNodes: map[string]string{"default/data-web-0": "b"},
			current:    placedAt(sts, "a"),
			ref:        sts,
			wantNodes:  []string{"b"},
			wantBound:  map[string]string{},
		},
		{
			name:       "shared claim is used and pins nothing",
			docs:       []string{sharedClassDoc, claimDoc("data", "shared", "ReadWriteMany"), claimDeployment("web", 2, "data")},
			nodes:      []Node{node("a"), node("b")},
			claimNodes: map[string]string{"default/data": "b"}, // ignored for a shared claim
			ref:        deploy,
			wantBound:  map[string]string{},
			wantShared: map[string]bool{"default/data": true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := loadClaimSet(t, c.docs...)
			in := Input{DesiredCommit: "c1", Workloads: ws, Nodes: c.nodes, ClaimNodes: c.claimNodes}
			if c.current != nil {
				in.Current = c.current(ws)
			}
			out := Schedule(in)
			p, ok := out.Placements[c.ref]
			if !ok {
				t.Fatalf("no placement of %v: %v", c.ref, out.Placements)
			}
			got := p.Nodes()
			if c.wantNodes != nil && !reflect.DeepEqual(got, c.wantNodes) {
				t.Fatalf("nodes = %q, want %q (replicas %+v)", got, c.wantNodes, p.Replicas)
			}
			for _, r := range p.Replicas {
				if r.Node != "" {
					continue
				}
				all := strings.Join(r.Pending, "; ")
				for _, sub := range c.wantReason {
					if !strings.Contains(all, sub) {
						t.Errorf("replica %d pending for %q, want it to mention %q", r.Index, all, sub)
					}
				}
			}
			if c.sameNode {
				if len(got) != 2 || got[0] == "" || got[0] != got[1] {
					t.Fatalf("replicas sharing a ReadWriteOnce claim on %q, want one node", got)
				}
				c.wantBound = map[string]string{"default/data": got[0]}
			}
			if c.ref == sts && c.wantNodes == nil {
				c.wantBound = map[string]string{}
				for _, r := range p.Replicas {
					if r.Node == "" {
						t.Fatalf("ordinal %d pending: %v", r.Index, r.Pending)
					}
					c.wantBound[fmt.Sprintf("default/data-web-%d", r.Index)] = r.Node
				}
				if len(c.wantBound) != 3 {
					t.Fatalf("ordinals %+v, want 0..2", p.Replicas)
				}
			}
			if c.wantShared != nil {
				seen := map[string]bool{}
				for _, n := range got {
					if n == "" {
						t.Fatalf("a replica of a shared claim is pending: %+v", p.Replicas)
					}
					seen[n] = true
				}
				if len(seen) != len(got) {
					t.Errorf("replicas of a shared claim on %q, want them spread (the claim pins nothing)", got)
				}
			}
			if !reflect.DeepEqual(out.Claims.Bound, c.wantBound) {
				t.Errorf("Claims.Bound = %v, want %v", out.Claims.Bound, c.wantBound)
			}
			wantShared := c.wantShared
			if wantShared == nil {
				wantShared = map[string]bool{}
			}
			if !reflect.DeepEqual(out.Claims.Shared, wantShared) {
				t.Errorf("Claims.Shared = %v, want %v", out.Claims.Shared, wantShared)
			}
		})
	}
}
