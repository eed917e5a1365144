package git

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/sources"
)

func TestFollowBranchAndReadTree(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	w := testenv.NewWorkClone(t, url)
	w.WriteFile("apps/a.yaml", "a: 1\n")
	w.WriteFile("apps/sub/b.yml", "b: 2\n")
	w.WriteFile("apps/README.md", "not a manifest\n")
	w.WriteFile("other/c.yaml", "c: 3\n")
	first := w.Commit("one")
	w.Push()

	r, err := Open(ctx, Config{URL: url, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := r.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Commit != first || rev.Subject != "one" {
		t.Fatalf("rev = %+v, want %s", rev, first)
	}
	files, err := r.Files(ctx, rev.Commit, "apps")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "a.yaml" || files[1].Path != "sub/b.yml" || string(files[1].Data) != "b: 2\n" {
		t.Fatalf("files = %+v", files)
	}

	// No-op sync returns the same head; a push is seen.
	start := time.Now()
	if rev2, err := r.Sync(ctx); err != nil || rev2.Commit != first {
		t.Fatalf("no-op sync: %v %v", rev2, err)
	}
	t.Logf("no-op sync: %s", time.Since(start))
	w.WriteFile("apps/a.yaml", "a: 2\n")
	second := w.Commit("two")
	w.Push()
	if rev3, err := r.Sync(ctx); err != nil || rev3.Commit != second {
		t.Fatalf("sync after push: %v %v", rev3, err)
	}
	if !r.Has(first) || r.Has("0123456789012345678901234567890123456789") {
		t.Fatal("Has is wrong")
	}
}

func TestPinTagAndCommit(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	w := testenv.NewWorkClone(t, url)
	w.WriteFile("a.yaml", "v: 1\n")
	v1 := w.Commit("v1")
	w.Push()
	w.Tag("v1")
	w.WriteFile("a.yaml", "v: 2\n")
	w.Commit("v2")
	w.Push()

	for _, ref := range []string{"v1", v1} {
		r, err := Open(ctx, Config{URL: url, Ref: ref, Dir: filepath.Join(t.TempDir(), "clone")})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := r.Sync(ctx)
		if err != nil || rev.Commit != v1 {
			t.Fatalf("pin %s: %v %v", ref, rev, err)
		}
	}
	r, _ := Open(ctx, Config{URL: url, Ref: "nope", Dir: filepath.Join(t.TempDir(), "clone")})
	if _, err := r.Sync(ctx); !errors.Is(err, sources.ErrRefNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
}

func TestUnreachableKeepsLocalState(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	testenv.InitBareRepo(t, filepath.Join(base, "r.git"))
	d := testenv.GitDaemon(t, base)
	w := testenv.NewWorkClone(t, "file://"+filepath.Join(base, "r.git"))
	w.WriteFile("a.yaml", "v: 1\n")
	c := w.Commit("v1")
	w.Push()

	dir := filepath.Join(t.TempDir(), "clone")
	r, err := Open(ctx, Config{URL: d.URL + "/r.git", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	d.Stop(t)
	if _, err := r.Sync(ctx); !errors.Is(err, sources.ErrUnreachable) {
		t.Fatalf("sync with daemon down: %v", err)
	}
	// A new process opens the clone offline and still reads the commit.
	r2, err := Open(ctx, Config{URL: d.URL + "/r.git", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if files, err := r2.Files(ctx, c, ""); err != nil || len(files) != 1 {
		t.Fatalf("offline read: %v %v", files, err)
	}
	d.Start(t)
	if rev, err := r2.Sync(ctx); err != nil || rev.Commit != c {
		t.Fatalf("sync after daemon restart: %v %v", rev, err)
	}
}

func TestCorruptCloneIsRecreated(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	w := testenv.NewWorkClone(t, url)
	w.WriteFile("a.yaml", "v: 1\n")
	c := w.Commit("v1")
	w.Push()
	for name, corrupt := range map[string]func(dir string) error{
		"objects removed": func(dir string) error { return os.RemoveAll(filepath.Join(dir, "objects")) },
		"HEAD truncated":  func(dir string) error { return os.WriteFile(filepath.Join(dir, "HEAD"), nil, 0o644) },
		"not a repo":      func(dir string) error { os.RemoveAll(dir); return os.WriteFile(dir, []byte("x"), 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "clone")
			r, err := Open(ctx, Config{URL: url, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if err := corrupt(dir); err != nil {
				t.Fatal(err)
			}
			r, err = Open(ctx, Config{URL: url, Dir: dir})
			if err != nil {
				t.Fatalf("open corrupt clone: %v", err)
			}
			rev, err := r.Sync(ctx)
			if err != nil || rev.Commit != c {
				t.Fatalf("sync after recovery: %v %v", rev, err)
			}
		})
	}
}

// A push to a local mirror is seen by fsnotify well before any poll.
func TestWatchLocalRefs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, url := testenv.NewBareRepo(t)
	w := testenv.NewWorkClone(t, url)
	w.WriteFile("a.yaml", "v: 1\n")
	w.Commit("v1")
	w.Push()
	r, err := Open(ctx, Config{URL: url, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := r.Watch(ctx)
	if err != nil || ch == nil {
		t.Fatalf("watch: %v", err)
	}
	for i, msg := range []string{"v2", "v3"} {
		w.WriteFile("a.yaml", msg+"\n")
		w.Commit(msg)
		start := time.Now()
		w.Push()
		select {
		case <-ch:
			t.Logf("push %d seen after %s", i, time.Since(start))
		case <-time.After(time.Second):
			t.Fatalf("push %d not seen within a second", i)
		}
	}
	// packed-refs rewritten by `git pack-refs` is seen too.
	testenv.Git(t, LocalPath(url), "pack-refs", "--all")
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("pack-refs not seen")
	}
	if c, _ := (&Repo{cfg: Config{URL: "git://example.invalid/x"}}).Watch(ctx); c != nil {
		t.Fatal("a network remote has nothing to watch")
	}
}
