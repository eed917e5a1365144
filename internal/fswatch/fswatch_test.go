package fswatch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func TestDirDebouncesAndFilters(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := Dir(ctx, dir, 50*time.Millisecond, func(ev fsnotify.Event) bool {
		return strings.HasSuffix(ev.Name, ".tar")
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Ignored files signal nothing.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("signal for a filtered file")
	case <-time.After(200 * time.Millisecond):
	}
	// A burst of writes is one signal.
	for i := 0; i < 5; i++ {
		if err := os.WriteFile(filepath.Join(dir, "a.tar"), []byte(strings.Repeat("x", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("no signal for a.tar")
	}
	select {
	case <-ch:
		t.Fatal("a burst gave two signals")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("signal after cancel")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestDirMissing(t *testing.T) {
	if _, err := Dir(context.Background(), filepath.Join(t.TempDir(), "nope"), time.Millisecond, nil, nil); err == nil {
		t.Fatal("watching a missing dir should fail")
	}
}

// Watch with Subdir sees the selected subdirectories, those there at the
// start and those created later, and nothing in the others.
func TestWatchSubdirs(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"refs/heads", "objects/ab"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := Watch(ctx, dir, Options{
		Debounce: 50 * time.Millisecond,
		Want:     func(ev fsnotify.Event) bool { return !strings.HasSuffix(ev.Name, ".lock") },
		Subdir: func(p string) bool {
			r, _ := filepath.Rel(dir, p)
			return r == "refs" || strings.HasPrefix(r, "refs"+string(filepath.Separator))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	signal := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatalf("no signal for %s", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-ch:
			t.Fatalf("signal for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
	write := func(rel string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, rel), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("refs/heads/main")
	signal("a file in an existing subdirectory")
	write("objects/ab/cd")
	quiet("a file in a subdirectory not selected")
	write("refs/heads/main.lock")
	quiet("a filtered file")
	write("top")
	signal("a file directly in the directory")

	if err := os.MkdirAll(filepath.Join(dir, "refs/heads/feature"), 0o755); err != nil {
		t.Fatal(err)
	}
	signal("a new subdirectory")
	write("refs/heads/feature/x")
	signal("a file in a new subdirectory")
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	signal("a new directory in the directory")
	write("logs/HEAD")
	quiet("a file in a new subdirectory not selected")
}
