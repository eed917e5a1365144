package volumes

import (
	"testing"

	"driftless.dev/driftless/manifest"
)

func loadOne(t *testing.T, doc string) *manifest.Set {
	t.Helper()
	if doc == "" {
		return &manifest.Set{}
	}
	set, err := manifest.Load([]manifest.File{{Path: "v.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

const deleteClaim = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, annotations: {driftless.dev/reclaim-policy: Delete}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`

// A claim with reclaim policy Delete that is gone: Released while a
// replica may still use it, then Deleting; bound again, a new directory.
func TestReclaimDelete(t *testing.T) {
	ref := ClaimRef("default", "cache")
	set := loadOne(t, deleteClaim)
	first := Next(Input{Set: set, DesiredCommit: "c1", NewlyBound: map[string]string{"default/cache": "a"},
		Users: map[string]manifest.Ref{"default/cache": {Namespace: "default", Kind: "Deployment", Name: "app"}}})
	b := first[ref]
	if b.ReclaimPolicy != "Delete" || b.UsedBy != "default/Deployment/app" || b.Phase != Bound {
		t.Fatalf("bound: %+v", b)
	}
	inUse := true
	gone := Next(Input{Set: loadOne(t, ""), DesiredCommit: "c2", Previous: first, InUse: func(Binding) bool { return inUse }})
	if g := gone[ref]; g.Phase != Released || g.Path != b.Path {
		t.Fatalf("gone, still in use: %+v", g)
	}
	inUse = false
	deleting := Next(Input{Set: loadOne(t, ""), DesiredCommit: "c3", Previous: gone, InUse: func(Binding) bool { return inUse }})
	if g := deleting[ref]; g.Phase != Deleting || g.Path != b.Path {
		t.Fatalf("gone, unused: %+v", g)
	}
	if p := Pins(deleting, Declared(set, deleting), func(string) bool { return true }); len(p) != 0 {
		t.Fatalf("a tombstone pins: %v", p)
	}
	// Back in Git: the tombstone stays until a replica binds the claim,
	// then it gets a directory of its own.
	back := Next(Input{Set: set, DesiredCommit: "c4", Previous: deleting})
	if g := back[ref]; g.Phase != Deleting {
		t.Fatalf("back, unused: %+v", g)
	}
	again := Next(Input{Set: set, DesiredCommit: "c5", Previous: back, NewlyBound: map[string]string{"default/cache": "a"}})
	if g := again[ref]; g.Phase != Bound || g.Path == b.Path {
		t.Fatalf("bound again: %+v (old path %s)", g, b.Path)
	}
}

// A StatefulSet with whenScaled: Delete gives up the claims of the
// ordinals it scales away; with Retain (the default) they stay Bound.
func TestWhenScaledDelete(t *testing.T) {
	sts := func(replicas, policy string) string {
		return `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: ` + replicas + `
  persistentVolumeClaimRetentionPolicy: {whenScaled: ` + policy + `}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`
	}
	for _, policy := range []string{"Retain", "Delete"} {
		prev := Next(Input{Set: loadOne(t, sts("2", policy)), DesiredCommit: "c1",
			NewlyBound: map[string]string{"default/data-web-0": "a", "default/data-web-1": "b"}})
		next := Next(Input{Set: loadOne(t, sts("1", policy)), DesiredCommit: "c2", Previous: prev, InUse: func(Binding) bool { return false }})
		want := Bound
		if policy == "Delete" {
			want = Deleting
		}
		if g := next[ClaimRef("default", "data-web-1")]; g.Phase != want {
			t.Errorf("whenScaled %s: data-web-1 %+v, want %s", policy, g, want)
		}
		if g := next[ClaimRef("default", "data-web-0")]; g.Phase != Bound {
			t.Errorf("whenScaled %s: data-web-0 %+v", policy, g)
		}
	}
}
