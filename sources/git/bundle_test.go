package git

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

func TestParseBundleHeader(t *testing.T) {
	sha := strings.Repeat("a", 40)
	for name, tc := range map[string]struct {
		in      string
		wantErr string
		check   func(BundleHeader) bool
	}{
		"v2": {in: "# v2 git bundle\n-" + sha + " base\n" + sha + " refs/heads/main\n\nPACK",
			check: func(h BundleHeader) bool {
				return h.Version == 2 && len(h.Prerequisites) == 1 && h.Refs["refs/heads/main"] == sha
			}},
		"v3 capabilities": {in: "# v3 git bundle\n@object-format=sha1\n" + sha + " refs/heads/main\n\n",
			check: func(h BundleHeader) bool { return h.Version == 3 && h.Capabilities["object-format"] == "sha1" }},
		"not a bundle":     {in: "PACK....", wantErr: "not a git bundle"},
		"capability in v2": {in: "# v2 git bundle\n@filter=blob:none\n\n", wantErr: "capability"},
		"no refs":          {in: "# v2 git bundle\n\n", wantErr: "no refs"},
		"truncated":        {in: "# v2 git bundle\n" + sha + " refs/heads/main\n", wantErr: "without the blank line"},
		"bad ref line":     {in: "# v2 git bundle\nxyz refs/heads/main\n\n", wantErr: "bad ref line"},
		"bad prerequisite": {in: "# v2 git bundle\n-abc\n" + sha + " refs/heads/main\n\n", wantErr: "prerequisite"},
	} {
		t.Run(name, func(t *testing.T) {
			h, err := ParseBundleHeader(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(h) {
				t.Fatalf("%+v %v", h, err)
			}
		})
	}
}

// Bundles made with plain `git bundle create` are imported; a bundle
// whose prerequisites the clone lacks is refused before anything is
// written.
func TestImportBundle(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	w := testenv.NewWorkClone(t, url)
	w.WriteFile("a.yaml", "v: 1\n")
	c1 := w.Commit("v1")
	w.WriteFile("a.yaml", "v: 2\n")
	c2 := w.Commit("v2")
	out := t.TempDir()
	full := filepath.Join(out, "full.bundle")
	testenv.Git(t, w.Dir, "bundle", "create", "-q", full, "main")
	w.WriteFile("a.yaml", "v: 3\n")
	c3 := w.Commit("v3")
	incr := filepath.Join(out, "incr.bundle")
	testenv.Git(t, w.Dir, "bundle", "create", "-q", incr, c2+"..main")
	v3 := filepath.Join(out, "v3.bundle")
	testenv.Git(t, w.Dir, "bundle", "create", "-q", "--version=3", v3, "main")

	// The network remote is never reached: the URL points nowhere.
	r, err := Open(ctx, Config{URL: "git://127.0.0.1:1/none.git", Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.ImportBundle(ctx, incr)
	if !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), "missing prerequisite") || !strings.Contains(err.Error(), c2[:12]) {
		t.Fatalf("incremental bundle first: %v", err)
	}
	if r.Has(c3) {
		t.Fatal("a refused bundle wrote objects")
	}
	rev, err := r.ImportBundle(ctx, full)
	if err != nil || rev.Commit != c2 || rev.Subject != "v2" {
		t.Fatalf("full bundle: %+v %v", rev, err)
	}
	if !r.Has(c1) || !r.Has(c2) {
		t.Fatal("objects missing after import")
	}
	if files, err := r.Files(ctx, c2, ""); err != nil || len(files) != 1 || string(files[0].Data) != "v: 2\n" {
		t.Fatalf("files: %v %v", files, err)
	}
	if rev, err := r.ImportBundle(ctx, incr); err != nil || rev.Commit != c3 {
		t.Fatalf("incremental bundle after the full one: %+v %v", rev, err)
	}
	if rev, err := r.ImportBundle(ctx, v3); err != nil || rev.Commit != c3 {
		t.Fatalf("v3 bundle: %+v %v", rev, err)
	}

	// A bundle without the followed branch, and a corrupt packfile.
	other := filepath.Join(out, "other.bundle")
	testenv.Git(t, w.Dir, "branch", "dev", c1)
	testenv.Git(t, w.Dir, "bundle", "create", "-q", other, "dev")
	if _, err := r.ImportBundle(ctx, other); !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), "no refs/heads/main") {
		t.Fatalf("bundle without main: %v", err)
	}
	b, _ := os.ReadFile(full)
	corrupt := filepath.Join(out, "corrupt.bundle")
	os.WriteFile(corrupt, b[:len(b)-30], 0o644)
	r2, _ := Open(ctx, Config{URL: "git://127.0.0.1:1/none.git", Dir: filepath.Join(t.TempDir(), "clone")})
	if _, err := r2.ImportBundle(ctx, corrupt); !errors.Is(err, ErrBadBundle) {
		t.Fatalf("corrupt bundle: %v", err)
	}
}

func TestInbox(t *testing.T) {
	dir := t.TempDir()
	in := Inbox{Dir: dir, Settle: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := in.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ".x.bundle.part"), []byte("x"), 0o644)
	os.Rename(filepath.Join(dir, ".x.bundle.part"), filepath.Join(dir, "x.bundle"))
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("rename into the inbox not seen")
	}
	ready, waiting, err := in.Pending()
	if err != nil || len(ready) != 0 || !waiting {
		t.Fatalf("a fresh file is not settled yet: %v %v %v", ready, waiting, err)
	}
	old := time.Now().Add(-3 * time.Second)
	os.Chtimes(filepath.Join(dir, "x.bundle"), old, old)
	ready, waiting, err = in.Pending()
	if err != nil || len(ready) != 1 || waiting || filepath.Base(ready[0]) != "x.bundle" {
		t.Fatalf("pending: %v %v %v", ready, waiting, err)
	}
	if err := in.Reject(ready[0], "missing prerequisite abc"); err != nil {
		t.Fatal(err)
	}
	reason, err := os.ReadFile(filepath.Join(dir, "rejected", "x.bundle.reason"))
	if err != nil || string(reason) != "missing prerequisite abc\n" {
		t.Fatalf("reason: %q %v", reason, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rejected", "x.bundle")); err != nil {
		t.Fatal(err)
	}
}
