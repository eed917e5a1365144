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
