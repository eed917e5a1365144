package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures of testdata/stateful are written in the image of public
// manifests of databases, caches and queues: each file alone and all of
// them together are accepted, every StatefulSet is a workload with its
// claim templates, and no warning is about a field driftless does not
// know.
func TestStatefulFixtures(t *testing.T) {
	paths, err := filepath.Glob("testdata/stateful/*.yaml")
	if err != nil || len(paths) < 8 {
		t.Fatalf("fixtures: %v %v", paths, err)
	}
	var all []File
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := File{Path: filepath.Base(p), Data: b}
		all = append(all, f)
		set, err := Load([]File{f})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for _, w := range set.Workloads {
			if w.Kind == "StatefulSet" {
				if w.Stateful == nil || w.Template.Spec.Subdomain != w.Stateful.ServiceName {
					t.Errorf("%s: %s: stateful spec %+v, subdomain %q", p, w.Name, w.Stateful, w.Template.Spec.Subdomain)
				}
				if len(w.ReplicaClaims(w.Stateful.OrdinalStart)) == 0 && len(w.ClaimTemplates) > 0 {
					t.Errorf("%s: %s: claim templates %v give ordinal %d no claims", p, w.Name, w.ClaimTemplates, w.Stateful.OrdinalStart)
				}
			}
		}
		for _, wr := range set.Warnings {
			if strings.Contains(wr.Message, "not supported") || strings.Contains(wr.Message, "unknown") {
				t.Errorf("%s: %s", p, wr)
			}
		}
	}
	set, err := Load(all)
	if err != nil {
		t.Fatalf("all fixtures together: %v", err)
	}
	stateful := 0
	for _, w := range set.Workloads {
		if w.Kind == "StatefulSet" {
			stateful++
		}
	}
	if stateful < 8 {
		t.Fatalf("%d StatefulSets in the fixtures", stateful)
	}
}
