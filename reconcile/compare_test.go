package reconcile

import (
	"testing"

	"driftless.dev/driftless/manifest"
)

func TestCompareContainerByContainer(t *testing.T) {
	web := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	gone := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "gone"}
	pod := manifest.PodSpec{Containers: []manifest.Container{{Name: "app"}, {Name: "side"}}}
	ctr := func(ref manifest.Ref, idx, name, hash string) Container {
		return Container{ID: ref.Name + "-" + idx + "-" + name + "-" + hash, State: StateRunning, Labels: map[string]string{
			LabelNamespace: ref.Namespace, LabelKind: ref.Kind, LabelWorkload: ref.Name, LabelReplica: idx, LabelContainer: name, LabelSpecHash: hash}}
	}
	desired := []DesiredReplica{
		{Workload: web, Index: 0, SpecHash: "h2", Pod: pod},
		{Workload: web, Index: 1, SpecHash: "h2", Pod: pod},
		{Workload: web, Index: 2, SpecHash: "h2", Pod: pod, Held: "commit not loaded"},
	}
	actual := []Container{
		ctr(web, "0", "app", "h2"), ctr(web, "0", "side", "h2"), // as desired
		ctr(web, "1", "app", "h1"),                   // old template; side missing
		ctr(gone, "0", "app", "h9"),                  // not desired
		{ID: "foreign", Labels: map[string]string{}}, // not driftless's
	}
	got := Compare(desired, actual)
	want := []Difference{
		{Kind: DiffExtra, Workload: gone, Index: 0, Container: "app", Have: "h9", ID: "gone-0-app-h9", State: string(StateRunning)},
		{Kind: DiffSpec, Workload: web, Index: 1, Container: "app", Want: "h2", Have: "h1", ID: "web-1-app-h1", State: string(StateRunning)},
		{Kind: DiffMissing, Workload: web, Index: 1, Container: "side", Want: "h2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("difference %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if d := Compare(desired[:1], actual[:2]); len(d) != 0 {
		t.Fatalf("as desired: %+v", d)
	}
}
