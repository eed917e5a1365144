package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"

	"driftless.dev/driftless/internal/ociimage"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
)

// An archive dropped into the images dir is imported when it appears; an
// image named by digest is checked against the imported content.
func TestWatchImagesAndDigest(t *testing.T) {
	cd := testenv.StartContainerd(t)
	testenv.BusyboxArchive(t) // skips or fails early without busybox-static
	dir := t.TempDir()
	rt, err := New(context.Background(), Config{Address: cd.Address, Namespace: testNS, ImagesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := rt.WatchImages(ctx)
	if err != nil || ch == nil {
		t.Fatalf("watch: %v", err)
	}
	const name = "example.test/airgap/app:v1"
	if err := rt.EnsureImage(ctx, name, "Never"); !errors.Is(err, reconcile.ErrImageNotFound) {
		t.Fatalf("before the archive: %v", err)
	}

	start := time.Now()
	if err := ociimage.BuildBusyboxFile(filepath.Join(dir, "app.tar"), name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Logf("archive imported %s after it appeared", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("archive not imported")
	}
	img, err := rt.Client().GetImage(namespaces.WithNamespace(ctx, testNS), name)
	if err != nil {
		t.Fatalf("imported image: %v", err)
	}
	dgst := img.Target().Digest

	byDigest := "example.test/airgap/app@" + dgst.String()
	if err := rt.EnsureImage(ctx, byDigest, "Never"); err != nil {
		t.Fatalf("by digest: %v", err)
	}
	if _, err := rt.Client().GetImage(namespaces.WithNamespace(ctx, testNS), byDigest); err != nil {
		t.Fatalf("digested name not recorded: %v", err)
	}
	// Another digest of the same repository: refused, naming what is there.
	wrong := "example.test/airgap/app@sha256:" + strings.Repeat("0", 64)
	err = rt.EnsureImage(ctx, wrong, "Never")
	if !errors.Is(err, reconcile.ErrImageNotFound) || !strings.Contains(err.Error(), "digest mismatch") || !strings.Contains(err.Error(), dgst.String()) {
		t.Fatalf("wrong digest: %v", err)
	}

	// Content that no longer hashes to its digest is refused: forget the
	// digested name and corrupt the manifest blob in containerd's store.
	nctx := namespaces.WithNamespace(ctx, testNS)
	if err := rt.Client().ImageService().Delete(nctx, byDigest); err != nil {
		t.Fatal(err)
	}
	od := dgst
	var blob string
	_ = filepath.WalkDir(cd.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) == od.Encoded() && strings.Contains(p, "content") {
			blob = p
		}
		return nil
	})
	if blob == "" {
		t.Fatalf("manifest blob %s not found under %s", od, cd.Dir)
	}
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 1
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = rt.EnsureImage(ctx, byDigest, "Never")
	if !errors.Is(err, reconcile.ErrImageNotFound) || !strings.Contains(err.Error(), "hashes to") {
		t.Fatalf("corrupt content: %v", err)
	}
}
