package git

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/sources"
)

// A fetch error moves on to the next mirror; the next Sync starts again
// from the first URL.
func TestMirrorFailover(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	testenv.InitBareRepo(t, filepath.Join(base, "r.git"))
	d := testenv.GitDaemon(t, base)
	w := testenv.NewWorkClone(t, "file://"+filepath.Join(base, "r.git"))
	w.WriteFile("a.yaml", "v: 1\n")
	c1 := w.Commit("v1")
	w.Push()
	mirror := filepath.Join(t.TempDir(), "mirror.git")
	testenv.Git(t, base, "clone", "-q", "--mirror", filepath.Join(base, "r.git"), mirror)

	primary := d.URL + "/r.git"
	r, err := Open(ctx, Config{URL: primary, Mirrors: []string{"file://" + mirror}, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := r.Sync(ctx)
	if err != nil || rev.Commit != c1 || rev.Remote != primary {
		t.Fatalf("primary up: %+v %v", rev, err)
	}

	// The primary goes down; the mirror has moved on.
	d.Stop(t)
	w.WriteFile("a.yaml", "v: 2\n")
	c2 := w.Commit("v2")
	testenv.Git(t, w.Dir, "push", "-q", "file://"+mirror, "main")
	rev, err = r.Sync(ctx)
	if err != nil || rev.Commit != c2 || rev.Remote != "file://"+mirror {
		t.Fatalf("primary down: %+v %v", rev, err)
	}

	// Back up: the next Sync uses the primary again.
	d.Start(t)
	w.Push()
	rev, err = r.Sync(ctx)
	if err != nil || rev.Commit != c2 || rev.Remote != primary {
		t.Fatalf("primary back: %+v %v", rev, err)
	}

	// Every remote down: the error says so for each.
	d.Stop(t)
	if err := os.RemoveAll(mirror); err != nil {
		t.Fatal(err)
	}
	_, err = r.Sync(ctx)
	if !errors.Is(err, sources.ErrUnreachable) {
		t.Fatalf("all down: %v", err)
	}
	for _, u := range []string{primary, "file://" + mirror} {
		if !strings.Contains(err.Error(), u) {
			t.Fatalf("error does not name %s: %v", u, err)
		}
	}
	if !r.Has(c2) {
		t.Fatal("objects lost while every remote is down")
	}
}

// A removed file:// primary fails over to a network mirror.
func TestMirrorFailoverRemovedLocalPrimary(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	testenv.InitBareRepo(t, filepath.Join(base, "r.git"))
	d := testenv.GitDaemon(t, base)
	w := testenv.NewWorkClone(t, "file://"+filepath.Join(base, "r.git"))
	w.WriteFile("a.yaml", "v: 1\n")
	c1 := w.Commit("v1")
	w.Push()
	gone := filepath.Join(t.TempDir(), "gone.git")
	r, err := Open(ctx, Config{URL: "file://" + gone, Mirrors: []string{d.URL + "/r.git"}, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := r.Sync(ctx)
	if err != nil || rev.Commit != c1 || rev.Remote != d.URL+"/r.git" {
		t.Fatalf("sync: %+v %v", rev, err)
	}
}
