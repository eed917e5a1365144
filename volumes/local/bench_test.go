package local

import (
	"fmt"
	"path/filepath"
	"testing"

	"driftless.dev/driftless/volumes"
)

// BenchmarkProvision measures a claim directory's first use (directory,
// mode, ledger written atomically) with 100 claims already on the node,
// and the lookup of one that exists (a replica's restart).
func BenchmarkProvision(b *testing.B) {
	root := b.TempDir()
	d, err := Open(filepath.Join(root, "vols"), filepath.Join(root, "volumes.json"))
	if err != nil {
		b.Fatal(err)
	}
	bind := func(i int) volumes.Binding {
		return volumes.Binding{Claim: volumes.ClaimRef("default", fmt.Sprintf("data-web-%d", i)), Node: "n1", Path: fmt.Sprintf("default/data-web-%d-abcd", i)}
	}
	for i := 0; i < 100; i++ {
		if _, err := d.Dir(bind(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("FirstUse", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := d.Dir(bind(1000 + i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Existing", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := d.Dir(bind(i % 100)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
