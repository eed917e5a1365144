package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRepoListInConfigFile(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml string
		want URLList
	}{
		"one string":   {"repo: git://a/x.git\n", URLList{"git://a/x.git"}},
		"comma string": {"repo: 'git://a/x.git, file:///m/x.git'\n", URLList{"git://a/x.git", "file:///m/x.git"}},
		"list":         {"repo:\n  - git://a/x.git\n  - file:///m/x.git\n", URLList{"git://a/x.git", "file:///m/x.git"}},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			if err := LoadConfigFile(p, &cfg); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Repo, tc.want) {
				t.Fatalf("repo = %q, want %q", cfg.Repo, tc.want)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.StatusRepo.Primary() != tc.want[0] || len(cfg.StatusRepo) != 1 {
				t.Fatalf("status repo = %q, want the first URL", cfg.StatusRepo)
			}
		})
	}
	var l URLList
	if err := l.Set("a, ,b"); err != nil || !reflect.DeepEqual(l, URLList{"a", "b"}) || l.String() != "a,b" {
		t.Fatalf("flag: %q %v", l, err)
	}
}
