package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"driftless.dev/driftless/volumes"
)

func localBinding(path string) volumes.Binding {
	return volumes.Binding{Claim: volumes.ClaimRef("default", "data"), Node: "a", Path: path, Phase: volumes.Bound}
}

func TestDirFirstUseCreatesAndRecords(t *testing.T) {
	tmp := t.TempDir()
	root, ledger := filepath.Join(tmp, "volumes"), filepath.Join(tmp, "state", "volumes.json")
	d, err := Open(root, ledger)
	if err != nil {
		t.Fatal(err)
	}
	if d.Root() != root {
		t.Errorf("Root() = %q, want %q", d.Root(), root)
	}
	b := localBinding("default/data-0123abcd")
	p, err := d.Dir(b)
	if err != nil {
		t.Fatalf("Dir: %v", err)
	}
	if want := filepath.Join(root, "default", "data-0123abcd"); p != want {
		t.Fatalf("Dir = %q, want %q", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil || !fi.IsDir() {
		t.Fatalf("stat %s: %v, %v", p, fi, err)
	}
	if m := fi.Mode().Perm(); m != 0o777 {
		t.Errorf("mode %v, want 0777", m)
	}
	raw, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatalf("ledger: %v", err)
	}
	var rec map[string]entry
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("ledger %s: %v", raw, err)
	}
	if e, ok := rec[b.Path]; !ok || e.Claim != "default/data" || e.Created.IsZero() {
		t.Errorf("ledger %s, want an entry for %s of default/data", raw, b.Path)
	}
	if got := d.Created(); !reflect.DeepEqual(got, []string{b.Path}) {
		t.Errorf("Created() = %v", got)
	}

	// Again, and from a second Dirs on the same ledger: the same path.
	for i, dd := range []*Dirs{d, mustOpen(t, root, ledger)} {
		p2, err := dd.Dir(b)
		if err != nil || p2 != p {
			t.Errorf("Dirs %d: Dir = %q, %v; want %q", i, p2, err, p)
		}
		if got := dd.Created(); !reflect.DeepEqual(got, []string{b.Path}) {
			t.Errorf("Dirs %d: Created() = %v", i, got)
		}
	}
}

func mustOpen(t *testing.T, root, ledger string) *Dirs {
	t.Helper()
	d, err := Open(root, ledger)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDirMissingDataIsNotRecreated(t *testing.T) {
	cases := []struct {
		name   string
		remove func(root, p string) error
		reopen bool
	}{
		{"claim directory removed", func(_, p string) error { return os.RemoveAll(p) }, false},
		{"claim directory removed, reopened", func(_, p string) error { return os.RemoveAll(p) }, true},
		{"volumes directory removed, reopened", func(root, _ string) error { return os.RemoveAll(root) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			root, ledger := filepath.Join(tmp, "volumes"), filepath.Join(tmp, "volumes.json")
			d := mustOpen(t, root, ledger)
			b := localBinding("default/data-0123abcd")
			p, err := d.Dir(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.remove(root, p); err != nil {
				t.Fatal(err)
			}
			if c.reopen {
				d = mustOpen(t, root, ledger)
			}
			got, err := d.Dir(b)
			if err == nil || !strings.Contains(err.Error(), "data is missing") {
				t.Fatalf("Dir = %q, %v; want an error saying the data is missing", got, err)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s re-created (stat: %v)", p, err)
			}
		})
	}
}

func TestDirKnownPathNotADirectory(t *testing.T) {
	tmp := t.TempDir()
	root, ledger := filepath.Join(tmp, "volumes"), filepath.Join(tmp, "volumes.json")
	d := mustOpen(t, root, ledger)
	b := localBinding("default/data-0123abcd")
	p, err := d.Dir(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Dir(b); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Dir err = %v, want not a directory", err)
	}
}

func TestDirRefusesBadPaths(t *testing.T) {
	cases := []struct{ name, path string }{
		{"empty", ""},
		{"parent", "../escape"},
		{"parent inside", "default/../../escape"},
		{"trailing parent", "default/.."},
		{"absolute", "/etc/data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			root, ledger := filepath.Join(tmp, "volumes"), filepath.Join(tmp, "volumes.json")
			d := mustOpen(t, root, ledger)
			p, err := d.Dir(localBinding(c.path))
			if err == nil || !strings.Contains(err.Error(), "bad path") {
				t.Fatalf("Dir(%q) = %q, %v; want a bad path error", c.path, p, err)
			}
			if _, err := os.Stat(ledger); !os.IsNotExist(err) {
				t.Errorf("ledger written for a refused path (stat: %v)", err)
			}
			if got := d.Created(); len(got) != 0 {
				t.Errorf("Created() = %v, want none", got)
			}
		})
	}
}

func TestDirUnusableRoot(t *testing.T) {
	cases := []struct {
		name string
		// setup makes root unusable and returns it.
		setup func(t *testing.T, tmp string) string
	}{
		{"root is a regular file", func(t *testing.T, tmp string) string {
			root := filepath.Join(tmp, "volumes")
			if err := os.WriteFile(root, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			return root
		}},
		{"root under a regular file", func(t *testing.T, tmp string) string {
			f := filepath.Join(tmp, "file")
			if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "volumes")
		}},
		{"root not writable", func(t *testing.T, tmp string) string {
			if os.Geteuid() == 0 {
				t.Skip("root writes anywhere")
			}
			root := filepath.Join(tmp, "volumes")
			if err := os.Mkdir(root, 0o555); err != nil {
				t.Fatal(err)
			}
			return root
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			root := c.setup(t, tmp)
			ledger := filepath.Join(tmp, "volumes.json")
			d := mustOpen(t, root, ledger)
			if p, err := d.Dir(localBinding("default/data-0123abcd")); err == nil {
				t.Fatalf("Dir = %q, want an error", p)
			}
			if got := d.Created(); len(got) != 0 {
				t.Errorf("Created() = %v, want none", got)
			}
		})
	}
}

func TestOpenLedger(t *testing.T) {
	cases := []struct {
		name    string
		ledger  string // content; "" for none
		wantErr bool
		want    []string
	}{
		{name: "missing ledger is empty", want: []string{}},
		{name: "ledger read", ledger: `{"default/x-1": {"claim": "default/x"}, "default/a-2": {"claim": "default/a"}}`, want: []string{"default/a-2", "default/x-1"}},
		{name: "corrupt ledger", ledger: `{not json`, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			ledger := filepath.Join(tmp, "volumes.json")
			if c.ledger != "" {
				if err := os.WriteFile(ledger, []byte(c.ledger), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d, err := Open(filepath.Join(tmp, "volumes"), ledger)
			if c.wantErr {
				if err == nil {
					t.Fatal("Open succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Created(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Created() = %v, want %v", got, c.want)
			}
		})
	}
}

func TestDirShared(t *testing.T) {
	cases := []struct {
		name    string
		path    func(tmp string) string
		mkRoot  bool
		wantErr string
	}{
		{name: "storage mounted", path: func(tmp string) string { return filepath.Join(tmp, "shared", "default", "data") }, mkRoot: true},
		{name: "storage not mounted", path: func(tmp string) string { return filepath.Join(tmp, "shared", "default", "data") }, wantErr: "not mounted"},
		{name: "relative path", path: func(string) string { return "shared/default/data" }, mkRoot: true, wantErr: "bad shared path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			if c.mkRoot {
				if err := os.Mkdir(filepath.Join(tmp, "shared"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ledger := filepath.Join(tmp, "volumes.json")
			d := mustOpen(t, filepath.Join(tmp, "volumes"), ledger)
			b := volumes.Binding{Claim: volumes.ClaimRef("default", "data"), Path: c.path(tmp), Phase: volumes.Bound}
			p, err := d.Dir(b)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Dir = %q, %v; want an error containing %q", p, err, c.wantErr)
				}
				if _, err := os.Stat(filepath.Join(tmp, "shared", "default")); !os.IsNotExist(err) {
					t.Errorf("shared directory created despite the error (stat: %v)", err)
				}
				return
			}
			if err != nil || p != b.Path {
				t.Fatalf("Dir = %q, %v; want %q", p, err, b.Path)
			}
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
				t.Errorf("stat %s: %v, %v; want a 0777 directory", p, fi, err)
			}
			// Shared directories are not this node's: not in its ledger.
			if _, err := os.Stat(ledger); !os.IsNotExist(err) {
				t.Errorf("ledger written for a shared claim (stat: %v)", err)
			}
		})
	}
}

func TestDeleteRemovesAndForgets(t *testing.T) {
	root := t.TempDir()
	d, err := Open(filepath.Join(root, "vols"), filepath.Join(root, "volumes.json"))
	if err != nil {
		t.Fatal(err)
	}
	b := volumes.Binding{Claim: volumes.ClaimRef("default", "cache"), Node: "n1", Path: "default/cache-0000"}
	p, err := d.Dir(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("still there: %v", err)
	}
	if len(d.Created()) != 0 {
		t.Fatalf("still in the ledger: %v", d.Created())
	}
	if err := d.Delete(b); err != nil {
		t.Fatalf("a second delete: %v", err)
	}
	for _, bad := range []string{"", "../x", "/etc"} {
		if err := d.Delete(volumes.Binding{Node: "n1", Path: bad}); err == nil {
			t.Errorf("deleted %q", bad)
		}
	}
}
