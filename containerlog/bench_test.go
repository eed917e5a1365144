package containerlog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCopy measures the writer alone: 80-byte lines from a pipe to a
// rotating file (10 MiB, 5 files), as the logger process runs it.
func BenchmarkCopy(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "app.log"), DefaultMaxSize, DefaultMaxFiles)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	chunk := []byte(strings.Repeat(strings.Repeat("x", 79)+"\n", 512))
	const perChunk = 512
	or, ow, _ := os.Pipe()
	er, ew, _ := os.Pipe()
	ew.Close()
	done := make(chan error, 1)
	go func() { done <- Copy(context.Background(), w, or, er) }()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ow.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	ow.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(perChunk*b.N)/b.Elapsed().Seconds(), "lines/s")
}
