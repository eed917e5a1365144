package volumes

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"driftless.dev/driftless/manifest"
)

func claimYAML(name, class, annotations string) string {
	cls := ""
	if class != "" {
		cls = "\n  storageClassName: " + class
	}
	mode := "ReadWriteOnce"
	if class == "shared" {
		mode = "ReadWriteMany"
	}
	ann := ""
	if annotations != "" {
		ann = ", annotations: {" + annotations + "}"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s%s}
spec:
  accessModes: [%s]
  resources: {requests: {storage: 2Gi}}%s
`, name, ann, mode, cls)
}

func statefulSetYAML(name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
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
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`, name, replicas)
}

const sharedClassYAML = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: shared}
provisioner: driftless.dev/host-path
parameters: {path: /mnt/shared}
`

func loadSet(t *testing.T, docs ...string) *manifest.Set {
	t.Helper()
	set, err := manifest.Load([]manifest.File{{Path: "a.yaml", Data: []byte(strings.Join(docs, "---\n"))}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return set
}

func bound(name, node, path string) Binding {
	return Binding{
		Claim: ClaimRef("default", name), Node: node, Path: path, Storage: "1Gi",
		AccessModes: []string{manifest.ReadWriteOnce}, Phase: Bound, DesiredCommit: "c0",
	}
}

func bindings(bs ...Binding) map[manifest.Ref]Binding {
	out := map[manifest.Ref]Binding{}
	for _, b := range bs {
		out[b.Claim] = b
	}
	return out
}

var localPath = regexp.MustCompile(`^default/data-[0-9a-f]{8}$`)

func TestNext(t *testing.T) {
	dataRef := ClaimRef("default", "data")
	released := bound("data", "a", "default/data-0badf00d")
	released.Phase = Released
	cases := []struct {
		name  string
		set   *manifest.Set
		in    Input
		check func(t *testing.T, got map[manifest.Ref]Binding)
	}{
		{
			name: "newly bound claim gets a binding",
			set:  loadSet(t, claimYAML("data", "", "")),
			in:   Input{NewlyBound: map[string]string{"default/data": "a"}},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				b, ok := got[dataRef]
				if !ok || len(got) != 1 {
					t.Fatalf("bindings %v, want one for %v", got, dataRef)
				}
				if !localPath.MatchString(b.Path) {
					t.Errorf("Path = %q, want default/data-<8 hex>", b.Path)
				}
				want := Binding{Claim: dataRef, Node: "a", Path: b.Path, Storage: "2Gi",
					AccessModes: []string{manifest.ReadWriteOnce}, Phase: Bound, DesiredCommit: "c1", ReclaimPolicy: "Retain"}
				if !reflect.DeepEqual(b, want) {
					t.Errorf("binding %+v, want %+v", b, want)
				}
			},
		},
		{
			name: "claim not declared is not bound",
			set:  loadSet(t, claimYAML("data", "", "")),
			in:   Input{NewlyBound: map[string]string{"default/other": "a"}},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				if len(got) != 0 {
					t.Errorf("bindings %v, want none", got)
				}
			},
		},
		{
			name: "binding of a claim gone is released and keeps node and path",
			set:  loadSet(t, claimYAML("other", "", "")),
			in:   Input{Previous: bindings(bound("data", "a", "default/data-0badf00d"))},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				want := bound("data", "a", "default/data-0badf00d")
				want.Phase = Released
				if !reflect.DeepEqual(got, bindings(want)) {
					t.Errorf("bindings %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "binding of a claim gone from an empty commit is released",
			set:  nil,
			in:   Input{Previous: bindings(bound("data", "a", "default/data-0badf00d"))},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				if b := got[dataRef]; b.Phase != Released || b.Node != "a" || b.Path != "default/data-0badf00d" {
					t.Errorf("binding %+v, want Released on a at its path", b)
				}
			},
		},
		{
			name: "claim back is bound again with the same path",
			set:  loadSet(t, claimYAML("data", "", "")),
			in:   Input{Previous: bindings(released)},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				b := got[dataRef]
				if b.Phase != Bound || b.Node != "a" || b.Path != released.Path || b.Storage != "2Gi" || b.DesiredCommit != "c0" {
					t.Errorf("binding %+v, want Bound on a at %s, 2Gi, of c0", b, released.Path)
				}
			},
		},
		{
			name: "claim back and used on its node keeps the same path",
			set:  loadSet(t, claimYAML("data", "", "")),
			in:   Input{Previous: bindings(released), NewlyBound: map[string]string{"default/data": "a"}},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				if b := got[dataRef]; b.Phase != Bound || b.Node != "a" || b.Path != released.Path {
					t.Errorf("binding %+v, want Bound on a at %s", b, released.Path)
				}
			},
		},
		{
			name: "claim bound anew on another node gets a fresh path",
			set:  loadSet(t, claimYAML("data", "", "")),
			in:   Input{Previous: bindings(bound("data", "a", "default/data-0badf00d")), NewlyBound: map[string]string{"default/data": "b"}},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				b := got[dataRef]
				if b.Node != "b" || b.Phase != Bound || b.Path == "default/data-0badf00d" || !localPath.MatchString(b.Path) || b.DesiredCommit != "c1" {
					t.Errorf("binding %+v, want Bound on b at a fresh default/data-<8 hex> of c1", b)
				}
			},
		},
		{
			name: "StatefulSet scaled from 3 to 1 keeps every ordinal's claim bound",
			set:  loadSet(t, statefulSetYAML("web", 1)),
			in: Input{Previous: bindings(
				bound("data-web-0", "a", "default/data-web-0-00000000"),
				bound("data-web-1", "b", "default/data-web-1-00000000"),
				bound("data-web-2", "c", "default/data-web-2-00000000"),
			)},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				if len(got) != 3 {
					t.Fatalf("bindings %v, want 3", got)
				}
				for i, n := range []string{"a", "b", "c"} {
					name := fmt.Sprintf("data-web-%d", i)
					b := got[ClaimRef("default", name)]
					if b.Phase != Bound || b.Node != n || b.Path != "default/"+name+"-00000000" {
						t.Errorf("%s: %+v, want Bound on %s", name, b, n)
					}
				}
			},
		},
		{
			name: "shared claim is at its class's path without a node",
			set:  loadSet(t, sharedClassYAML, claimYAML("data", "shared", "")),
			in:   Input{Used: map[string]bool{"default/data": true}},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				want := Binding{Claim: dataRef, Path: "/mnt/shared/default/data", Storage: "2Gi",
					AccessModes: []string{manifest.ReadWriteMany}, StorageClass: "shared", Phase: Bound, DesiredCommit: "c1", ReclaimPolicy: "Retain"}
				if !reflect.DeepEqual(got, bindings(want)) {
					t.Errorf("bindings %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "shared claim used again keeps its binding",
			set:  loadSet(t, sharedClassYAML, claimYAML("data", "shared", "")),
			in: Input{Used: map[string]bool{"default/data": true}, Previous: bindings(Binding{
				Claim: dataRef, Path: "/mnt/shared/default/data", Phase: Bound, DesiredCommit: "c0"})},
			check: func(t *testing.T, got map[manifest.Ref]Binding) {
				if b := got[dataRef]; b.DesiredCommit != "c0" || b.Node != "" || b.Path != "/mnt/shared/default/data" {
					t.Errorf("binding %+v, want the one of c0", b)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			in.Set, in.DesiredCommit = c.set, "c1"
			got := Next(in)
			c.check(t, got)
			// Deterministic: the same input gives the same bindings.
			if again := Next(in); !reflect.DeepEqual(again, got) {
				t.Errorf("Next not deterministic: %+v then %+v", got, again)
			}
		})
	}
}

func TestNextPathDependsOnNodeAndCommit(t *testing.T) {
	set := loadSet(t, claimYAML("data", "", ""))
	path := func(node, commit string) string {
		return Next(Input{Set: set, DesiredCommit: commit, NewlyBound: map[string]string{"default/data": node}})[ClaimRef("default", "data")].Path
	}
	cases := []struct {
		name         string
		node, commit string
	}{
		{"other node", "b", "c1"},
		{"other commit", "a", "c2"},
	}
	base := path("a", "c1")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if p := path(c.node, c.commit); p == base || !localPath.MatchString(p) {
				t.Errorf("path %q (base %q), want a different default/data-<8 hex>", p, base)
			}
		})
	}
}

func TestDeclared(t *testing.T) {
	cases := []struct {
		name string
		set  *manifest.Set
		prev map[manifest.Ref]Binding
		want []string
	}{
		{name: "nil set", want: []string{}},
		{name: "claim documents", set: loadSet(t, claimYAML("a", "", ""), claimYAML("b", "", "")), want: []string{"default/a", "default/b"}},
		{name: "StatefulSet ordinals", set: loadSet(t, statefulSetYAML("web", 2)), want: []string{"default/data-web-0", "default/data-web-1"}},
		{
			name: "StatefulSet ordinals scaled away with bindings",
			set:  loadSet(t, statefulSetYAML("web", 1)),
			prev: bindings(bound("data-web-1", "b", "p1"), bound("data-web-2", "c", "p2")),
			want: []string{"default/data-web-0", "default/data-web-1", "default/data-web-2"},
		},
		{
			name: "bindings of other names are not the StatefulSet's",
			set:  loadSet(t, statefulSetYAML("web", 1)),
			prev: bindings(bound("data-web-x", "b", "p1"), bound("data-webby-1", "b", "p2"), bound("logs-web-1", "b", "p3"),
				Binding{Claim: ClaimRef("other", "data-web-1")}),
			want: []string{"default/data-web-0"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Declared(c.set, c.prev)
			keys := []string{}
			for k, cl := range got {
				if cl.Key() != k {
					t.Errorf("key %q holds claim %q", k, cl.Key())
				}
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !reflect.DeepEqual(keys, c.want) {
				t.Errorf("Declared = %v, want %v", keys, c.want)
			}
		})
	}
}

func TestPins(t *testing.T) {
	set := loadSet(t, sharedClassYAML,
		claimYAML("reclaim-dead", "", `driftless.dev/reclaim-on-node-loss: "true"`),
		claimYAML("reclaim-alive", "", `driftless.dev/reclaim-on-node-loss: "true"`),
		claimYAML("keep-dead", "", ""),
		claimYAML("keep-alive", "", `driftless.dev/reclaim-on-node-loss: "false"`),
		claimYAML("shared", "shared", ""),
	)
	released := bound("gone", "dead", "p")
	released.Phase = Released
	prev := bindings(
		bound("reclaim-dead", "dead", "p"),
		bound("reclaim-alive", "up", "p"),
		bound("keep-dead", "dead", "p"),
		bound("keep-alive", "up", "p"),
		Binding{Claim: ClaimRef("default", "shared"), Path: "/mnt/shared/default/shared", Phase: Bound},
		released,
	)
	alive := func(n string) bool { return n == "up" }
	got := Pins(prev, Declared(set, prev), alive)
	cases := []struct {
		key      string
		node     string
		isPinned bool
	}{
		{"default/reclaim-dead", "", false},
		{"default/reclaim-alive", "up", true},
		{"default/keep-dead", "dead", true},
		{"default/keep-alive", "up", true},
		{"default/shared", "", false},
		{"default/gone", "dead", true},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			n, ok := got[c.key]
			if ok != c.isPinned || n != c.node {
				t.Errorf("pin %q, %v; want %q, %v", n, ok, c.node, c.isPinned)
			}
		})
	}
	if len(got) != 4 {
		t.Errorf("Pins = %v, want 4", got)
	}
}
