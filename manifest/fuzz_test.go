package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the strict decoder and validator as
// one manifest file: it must never panic, and a refused file is refused
// with problems that name the file, never with a bare error.
func FuzzLoad(f *testing.F) {
	// The Kubernetes example corpus, when it is there, seeds the run too
	// (testdata/fuzz/FuzzLoad holds the project's own seeds).
	dir := os.Getenv("DRIFTLESS_K8S_EXAMPLES")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "testdata", "k8s-examples")
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: a, image: b}]}\n"))
	f.Add([]byte("---\n---\nkind: Pod\n"))
	f.Add([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '!!!'}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Load([]File{{Path: "fuzz.yaml", Data: data}})
		if err == nil {
			return
		}
		var probs Errors
		if !errors.As(err, &probs) {
			return // a whole-file error (I/O-like) is allowed to be plain
		}
		for _, p := range probs {
			if !strings.HasPrefix(p.String(), "fuzz.yaml") {
				t.Fatalf("problem does not name the file: %q", p.String())
			}
		}
	})
}
