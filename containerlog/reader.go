package containerlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// joiner joins the partial records of each stream into whole lines.
type joiner struct {
	pending map[string]*Entry
	emit    func(Entry) error
}

func newJoiner(emit func(Entry) error) *joiner {
	return &joiner{pending: map[string]*Entry{}, emit: emit}
}

func (j *joiner) line(b []byte) error {
	e, _ := ParseRecord(b)
	if e.Raw {
		return j.emit(Entry{Raw: true, Text: append([]byte(nil), e.Text...)})
	}
	p := j.pending[e.Stream]
	if p == nil {
		p = &Entry{Time: e.Time, Stream: e.Stream}
	}
	p.Text = append(p.Text, e.Text...)
	if e.Partial {
		j.pending[e.Stream] = p
		return nil
	}
	delete(j.pending, e.Stream)
	return j.emit(*p)
}

// scan feeds the lines of r to j; an unterminated last line is returned
// (it may be completed by a later read of the same file).
func scan(r io.Reader, carry []byte, j *joiner) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			if b[len(b)-1] == '\n' {
				line := b[:len(b)-1]
				if len(carry) > 0 {
					line = append(carry, line...)
					carry = nil
				}
				if jerr := j.line(line); jerr != nil {
					return nil, jerr
				}
			} else {
				carry = append(carry, b...)
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return carry, nil
		default:
			return carry, err
		}
	}
}

// Read calls fn with every line of the files, in order, partial records
// joined.
func Read(files []string, fn func(Entry) error) error {
	j := newJoiner(fn)
	for _, p := range files {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // rotated away while we read
		}
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		carry, err := scan(f, nil, j)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if len(carry) > 0 {
			if err := j.line(carry); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tail returns the last n lines of the files (every line when n < 0).
func Tail(files []string, n int) ([]Entry, error) {
	var out []Entry
	err := Read(files, func(e Entry) error {
		if n == 0 {
			return nil
		}
		out = append(out, e)
		if n > 0 && len(out) > 2*n+1024 {
			out = append(out[:0], out[len(out)-n:]...)
		}
		return nil
	})
	if n >= 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out, err
}

// FollowInterval is how often Follow looks for new lines once it has read
// everything.
var FollowInterval = 100 * time.Millisecond

// Follow calls fn with the last n lines of the current run at path (every
// line when n < 0), then with each new line until ctx is done. It follows
// the file across rotations and across a new run of the container (which
// moves the file away and starts a new one).
func Follow(ctx context.Context, path string, n int, fn func(Entry) error) error {
	// Open the current file first so that no line written between reading
	// the tail and following it is lost.
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open log: %w", err)
	}
	files, err := Files(path)
	if err != nil {
		return err
	}
	var older []string
	for _, f := range files {
		if f != path {
			older = append(older, f)
		}
	}
	// The rotated files are read by name, the current one by the open
	// descriptor: the path may name a newer file by now.
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	var tail []Entry
	collect := func(e Entry) error {
		tail = append(tail, e)
		return nil
	}
	if err := Read(older, collect); err != nil {
		return err
	}
	j := newJoiner(collect)
	var carry []byte
	if cur != nil {
		if carry, err = scan(cur, nil, j); err != nil {
			return err
		}
	}
	if n >= 0 && len(tail) > n {
		tail = tail[len(tail)-n:]
	}
	for _, e := range tail {
		if err := fn(e); err != nil {
			return err
		}
	}
	j.emit = fn
	t := time.NewTicker(FollowInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if cur != nil {
			if carry, err = scan(cur, carry, j); err != nil {
				return err
			}
		}
		if cur != nil && !replaced(cur, path) {
			continue
		}
		// The file was rotated or a new run started: what is left in the
		// old one was read above (the writer closes it before renaming),
		// so go on with the new file from its start.
		next, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		if cur != nil {
			if carry, err = scan(cur, carry, j); err != nil {
				next.Close()
				return err
			}
			if len(carry) > 0 {
				_ = j.line(carry)
				carry = nil
			}
			cur.Close()
		}
		cur = next
		if carry, err = scan(cur, nil, j); err != nil {
			return err
		}
	}
}

// replaced reports whether path now names another file than f.
func replaced(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return true
	}
	b, err := os.Stat(path)
	if err != nil {
		return false // in the middle of a rotation: keep the old one
	}
	return !os.SameFile(a, b)
}

// Format renders an entry as `driftless logs` prints it: the text, with
// the timestamp first when timestamps is set.
func Format(buf []byte, e Entry, timestamps bool) []byte {
	if timestamps && !e.Raw {
		buf = e.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, ' ')
	}
	buf = append(buf, e.Text...)
	return append(buf, '\n')
}
