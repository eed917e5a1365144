package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeOrNotAtAll(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o640 {
		t.Fatalf("content %q mode %v", b, fi.Mode().Perm())
	}
	// A failed write leaves the old content and no temporary file.
	err := Write(p, 0o600, func(w io.Writer) error {
		_, _ = w.Write([]byte("par"))
		return errors.New("disk full")
	})
	if err == nil {
		t.Fatal("a failed write succeeded")
	}
	b, _ = os.ReadFile(p)
	es, _ := os.ReadDir(dir)
	if string(b) != "two" || len(es) != 1 {
		t.Fatalf("after a failed write: %q, %d entries", b, len(es))
	}
}
