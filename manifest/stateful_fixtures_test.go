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

func TestPriorityClasses(t *testing.T) {
	doc := func(extra string) string {
		return `apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
description: serving
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
globalDefault: true
preemptionPolicy: Never
` + extra + `---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  priorityClassName: high
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec:
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: c}
spec:
  priorityClassName: nowhere
  containers: [{name: c, image: busybox}]
`
	}
	set, err := Load([]File{{Path: "p.yaml", Data: []byte(doc(""))}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int32{}
	for _, w := range set.Workloads {
		got[w.Name] = w.Priority
	}
	if got["a"] != 1000 || got["b"] != 10 || got["c"] != 0 {
		t.Fatalf("priorities %v", got)
	}
	var warned bool
	for _, w := range set.Warnings {
		warned = warned || strings.Contains(w.String(), `priorityClassName: "nowhere": PriorityClass not in this commit`)
	}
	if !warned {
		t.Fatalf("no warning for the missing class: %v", set.Warnings)
	}
	for extra, want := range map[string]string{
		"---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: other}\nvalue: 5\nglobalDefault: true\n": "globalDefault: \"true\": PriorityClass low is the global default already",
		"---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: huge}\nvalue: 2000000000\n":              "must be at most 1000000000",
		"---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: novalue}\n":                              "value: required",
	} {
		_, err := Load([]File{{Path: "p.yaml", Data: []byte(doc(extra))}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}
