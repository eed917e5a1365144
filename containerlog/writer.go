package containerlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the agent's --log-max-size and --log-max-files.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 5
)

// Writer appends records to a log file and rotates it by size. Safe for
// concurrent use: each Lines call is written whole, so the lines of two
// streams interleave but never mix.
type Writer struct {
	path     string
	maxSize  int64
	maxFiles int
	now      func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte
}

// Open opens (appending to) the log file at path. maxSize is the size a
// file may reach before it is rotated (at least one record is written to
// each file whatever its size); maxFiles counts path itself, so 1 keeps no
// rotated file.
func Open(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("log max size %d: must be positive", maxSize)
	}
	if maxFiles < 1 {
		return nil, fmt.Errorf("log max files %d: must be at least 1", maxFiles)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	w := &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles, now: time.Now}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Lines writes one record per line of text, all stamped now, with one
// write per file. A line longer than MaxLine becomes partial records.
// text should end with a newline; a final piece without one is written as
// a full line (the caller has no more to add to it).
func (w *Writer) Lines(stream string, text []byte) error {
	return w.lines(stream, text, false)
}

// Partial writes the beginning of a line whose end is still to come, as
// partial records.
func (w *Writer) Partial(stream string, text []byte) error {
	return w.lines(stream, text, true)
}

func (w *Writer) lines(stream string, text []byte, tailPartial bool) error {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	for len(text) > 0 {
		line, rest, found := cutLine(text)
		partial := false
		if len(line) > MaxLine {
			line, rest, partial = text[:MaxLine], text[MaxLine:], true
		} else if !found {
			rest, partial = nil, tailPartial
		}
		text = rest
		start := len(w.buf)
		w.buf = AppendRecord(w.buf, now, stream, partial, line)
		if n := int64(len(w.buf)); w.size+n > w.maxSize && w.size+int64(start) > 0 {
			// This record would take the file over the limit: write what
			// fits, rotate, and start the new file with it.
			rec := append([]byte(nil), w.buf[start:]...)
			w.buf = w.buf[:start]
			if err := w.flush(); err != nil {
				return err
			}
			if err := w.rotate(); err != nil {
				return err
			}
			w.buf = append(w.buf, rec...)
		}
	}
	return w.flush()
}

func cutLine(b []byte) (line, rest []byte, found bool) {
	for i, c := range b {
		if c == '\n' {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	w.buf = w.buf[:0]
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// rotate shifts path.N-1 to path.N ... path to path.1, dropping what falls
// beyond maxFiles, and opens a new empty path.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	w.f = nil
	if err := shift(w.path, w.maxFiles); err != nil {
		return err
	}
	return w.open()
}

func shift(path string, maxFiles int) error {
	if maxFiles == 1 {
		return removeIfExists(path)
	}
	if err := removeIfExists(numbered(path, maxFiles-1)); err != nil {
		return err
	}
	for i := maxFiles - 2; i >= 0; i-- {
		err := os.Rename(numbered(path, i), numbered(path, i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	return nil
}

// numbered is path for 0, path.i otherwise.
func numbered(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove old log: %w", err)
	}
	return nil
}

// Close closes the file. Safe to call twice.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// PreviousPath is the current-run path's counterpart for the run before:
// web.log -> web.previous.log.
func PreviousPath(path string) string {
	return strings.TrimSuffix(path, ".log") + ".previous.log"
}

// KeepPrevious makes the files of the last run (path and its rotations)
// the previous run's, replacing the ones kept before. It does nothing when
// path does not exist, so that the first run keeps an older previous run.
func KeepPrevious(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	prev := PreviousPath(path)
	old, err := filepath.Glob(globQuote(prev) + ".*")
	if err != nil {
		return err
	}
	for _, p := range append(old, prev) {
		if isNumbered(prev, p) || p == prev {
			if err := removeIfExists(p); err != nil {
				return err
			}
		}
	}
	cur, err := filepath.Glob(globQuote(path) + ".*")
	if err != nil {
		return err
	}
	for _, p := range append(cur, path) {
		if p != path && !isNumbered(path, p) {
			continue
		}
		if err := os.Rename(p, prev+strings.TrimPrefix(p, path)); err != nil {
			return fmt.Errorf("keep previous log: %w", err)
		}
	}
	return nil
}

func isNumbered(base, p string) bool {
	s, ok := strings.CutPrefix(p, base+".")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n > 0
}

func globQuote(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// Files returns the files of a run, oldest first: path.N ... path.1, path.
// Missing files are left out.
func Files(path string) ([]string, error) {
	matches, err := filepath.Glob(globQuote(path) + ".*")
	if err != nil {
		return nil, err
	}
	type nf struct {
		n int
		p string
	}
	var rotated []nf
	for _, m := range matches {
		if s, ok := strings.CutPrefix(m, path+"."); ok {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				rotated = append(rotated, nf{n, m})
			}
		}
	}
	// Highest number is oldest.
	for i := 1; i < len(rotated); i++ {
		for j := i; j > 0 && rotated[j].n > rotated[j-1].n; j-- {
			rotated[j], rotated[j-1] = rotated[j-1], rotated[j]
		}
	}
	var out []string
	for _, r := range rotated {
		out = append(out, r.p)
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out, nil
}

var _ io.Closer = (*Writer)(nil)
