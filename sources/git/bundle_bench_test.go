package git

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"driftless.dev/driftless/internal/testenv"
)

// BenchmarkImportBundle: an incremental bundle of one commit (10 changed
// files) on a clone that has its prerequisite.
func BenchmarkImportBundle(b *testing.B) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(b)
	w := testenv.NewWorkClone(b, url)
	for i := 0; i < 200; i++ {
		w.WriteFile(fmt.Sprintf("apps/%03d.yaml", i), fmt.Sprintf("v: %d\n", i))
	}
	base := w.Commit("base")
	full := filepath.Join(b.TempDir(), "full.bundle")
	testenv.Git(b, w.Dir, "bundle", "create", "-q", full, "main")
	for i := 0; i < 10; i++ {
		w.WriteFile(fmt.Sprintf("apps/%03d.yaml", i), "v: changed\n")
	}
	w.Commit("change")
	incr := filepath.Join(b.TempDir(), "incr.bundle")
	testenv.Git(b, w.Dir, "bundle", "create", "-q", incr, base+"..main")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r, err := Open(ctx, Config{URL: "git://127.0.0.1:1/none.git", Dir: filepath.Join(b.TempDir(), "clone")})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.ImportBundle(ctx, full); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := r.ImportBundle(ctx, incr); err != nil {
			b.Fatal(err)
		}
	}
}
