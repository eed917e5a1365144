package main

import (
	"strings"
	"testing"

	yaml "sigs.k8s.io/yaml/goyaml.v3"

	"driftless.dev/driftless/manifest"
)

func TestSetAnnotationKeepsTheFile(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		line           int
	}{
		{"no annotations", "# a comment\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec: {}\n", "# a comment\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    driftless.dev/suspended: \"true\"\n  name: web\n  labels: {app: web}\nspec: {}\n", 2},
		{"other annotations", "kind: Deployment\nmetadata:\n    name: web\n    annotations:\n        team: shop   # owners\nspec: {}\n", "kind: Deployment\nmetadata:\n    name: web\n    annotations:\n        driftless.dev/suspended: \"true\"\n        team: shop   # owners\nspec: {}\n", 1},
		{"second document", "kind: Service\nmetadata:\n  name: web\n---\nkind: Deployment\nmetadata:\n  name: web\n", "kind: Service\nmetadata:\n  name: web\n---\nkind: Deployment\nmetadata:\n  annotations:\n    driftless.dev/suspended: \"true\"\n  name: web\n", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.line < 0 {
				tc.line = docLine(t, tc.in, 1)
			}
			got, err := setAnnotation([]byte(tc.in), tc.line, true)
			if err != nil || string(got) != tc.want {
				t.Fatalf("suspend: %v\n%s\nwant\n%s", err, got, tc.want)
			}
			if again, err := setAnnotation(got, tc.line, true); err != nil || again != nil {
				t.Fatalf("suspending twice changes %q (%v)", again, err)
			}
			back, err := setAnnotation(got, tc.line, false)
			if err != nil {
				t.Fatal(err)
			}
			// Resuming removes what suspending added (an annotations
			// block it created goes whole).
			if string(back) != tc.in && !(tc.name == "no annotations" || tc.name == "second document") {
				t.Fatalf("resume:\n%s\nwant\n%s", back, tc.in)
			}
			if strings.Contains(string(back), manifest.AnnotationSuspended) {
				t.Fatalf("resume left the annotation:\n%s", back)
			}
		})
	}
	if _, err := setAnnotation([]byte("kind: Pod\nmetadata: {name: p}\n"), 1, true); err == nil || !strings.Contains(err.Error(), "flow style") {
		t.Fatalf("flow style: %v", err)
	}
}

// docLine is the line yaml gives the n-th document (from 0) of a file.
func docLine(t *testing.T, file string, n int) int {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(file))
	for i := 0; ; i++ {
		var d yaml.Node
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if i == n {
			return d.Line
		}
	}
}
