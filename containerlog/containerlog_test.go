package containerlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 5, 1, 41, 120000000, time.FixedZone("x", 3600))
	for _, c := range []struct {
		stream  string
		partial bool
		text    string
	}{{Stdout, false, "hello world"}, {Stderr, true, "  spaced  "}, {Stdout, false, ""}} {
		rec := AppendRecord(nil, at, c.stream, c.partial, []byte(c.text))
		if !bytes.HasPrefix(rec, []byte("2026-11-23T04:01:41.120000000Z ")) {
			t.Fatalf("record %q: timestamp not UTC with nine digits", rec)
		}
		e, err := ParseRecord(bytes.TrimSuffix(rec, []byte("\n")))
		if err != nil || !e.Time.Equal(at) || e.Stream != c.stream || e.Partial != c.partial || string(e.Text) != c.text {
			t.Fatalf("record %q parsed as %+v, %v", rec, e, err)
		}
	}
	for _, raw := range []string{"plain text", "2026-11-23T04:01:41Z stdin F x", "2026-11-23T04:01:41Z stdout X x", ""} {
		if e, err := ParseRecord([]byte(raw)); err == nil || !e.Raw || string(e.Text) != raw {
			t.Fatalf("%q: %+v, %v; want a raw entry", raw, e, err)
		}
	}
}

func lines(t *testing.T, files []string) []string {
	t.Helper()
	var out []string
	if err := Read(files, func(e Entry) error { out = append(out, string(e.Text)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRotationKeepsAtMostMaxFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c", "app.log")
	w, err := Open(path, 1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if err := w.Lines(Stdout, []byte(fmt.Sprintf("line %03d\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ".2", path + ".1", path}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", files, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 3 {
		t.Fatalf("%d files in the log dir, want 3", len(entries))
	}
	for _, f := range files[:2] {
		fi, _ := os.Stat(f)
		if fi.Size() > 1000 || fi.Size() < 900 {
			t.Fatalf("%s: %d bytes, want just under the 1000 limit", f, fi.Size())
		}
	}
	got := lines(t, files)
	if got[len(got)-1] != "line 299" {
		t.Fatalf("last line %q", got[len(got)-1])
	}
	// What is kept is a contiguous run of the newest lines.
	first := 300 - len(got)
	for i, l := range got {
		if l != fmt.Sprintf("line %03d", first+i) {
			t.Fatalf("line %d is %q, want line %03d", i, l, first+i)
		}
	}
}

func TestOneFileTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, err := Open(path, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		w.Lines(Stderr, []byte(fmt.Sprintf("e%d\n", i)))
	}
	w.Close()
	files, _ := Files(path)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	if got := lines(t, files); got[len(got)-1] != "e49" {
		t.Fatalf("lines %v", got)
	}
}

// copyThrough runs the logger's copy loop on pipes, as the shim gives it.
func copyThrough(t *testing.T, w *Writer, write func(out, errw io.Writer)) {
	t.Helper()
	or, ow, _ := os.Pipe()
	er, ew, _ := os.Pipe()
	done := make(chan error, 1)
	go func() { done <- Copy(context.Background(), w, or, er) }()
	write(ow, ew)
	ow.Close()
	ew.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLongLinesArePartialRecordsJoinedOnRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, _ := Open(path, 1<<30, 2)
	long := strings.Repeat("x", 5*MaxLine+17)
	copyThrough(t, w, func(out, errw io.Writer) {
		io.WriteString(out, "short\n"+long+"\nno newline at the end")
	})
	w.Close()
	b, _ := os.ReadFile(path)
	if n := bytes.Count(b, []byte(" stdout P ")); n != 5 {
		t.Fatalf("%d partial records, want 5", n)
	}
	got := lines(t, []string{path})
	if len(got) != 3 || got[0] != "short" || got[1] != long || got[2] != "no newline at the end" {
		t.Fatalf("lines: %d, %q", len(got), got[0])
	}
}

func TestStreamsInterleaveByLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, _ := Open(path, 1<<30, 2)
	copyThrough(t, w, func(out, errw io.Writer) {
		var wg sync.WaitGroup
		for _, s := range []struct {
			w    io.Writer
			name string
		}{{out, "out"}, {errw, "err"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 2000 {
					fmt.Fprintf(s.w, "%s %d\n", s.name, i)
				}
			}()
		}
		wg.Wait()
	})
	w.Close()
	next := map[string]int{}
	err := Read([]string{path}, func(e Entry) error {
		var name string
		var i int
		if _, err := fmt.Sscanf(string(e.Text), "%s %d", &name, &i); err != nil {
			return fmt.Errorf("mixed line %q", e.Text)
		}
		if (name == "out") != (e.Stream == Stdout) || next[name] != i {
			return fmt.Errorf("line %q on %s, want %s %d", e.Text, e.Stream, name, next[name])
		}
		next[name]++
		return nil
	})
	if err != nil || next["out"] != 2000 || next["err"] != 2000 {
		t.Fatalf("%v %v", err, next)
	}
}

func TestKeepPrevious(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	write := func(names ...string) {
		for _, n := range names {
			os.WriteFile(filepath.Join(dir, n), []byte(n+"\n"), 0o644)
		}
	}
	write("app.previous.log", "app.previous.log.1", "app.previous.log.2", "app.log", "app.log.1", "other.log")
	if err := KeepPrevious(path); err != nil {
		t.Fatal(err)
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		names = append(names, e.Name()+"="+strings.TrimSpace(string(b)))
	}
	want := "app.previous.log=app.log app.previous.log.1=app.log.1 other.log=other.log"
	if strings.Join(names, " ") != want {
		t.Fatalf("after KeepPrevious: %v, want %s", names, want)
	}
	// No current file (first run of a new container): previous stays.
	if err := KeepPrevious(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.previous.log")); err != nil {
		t.Fatal(err)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, _ := Open(path, 300, 30)
	for i := range 100 {
		w.Lines(Stdout, []byte(fmt.Sprintf("l%d\n", i)))
	}
	w.Close()
	files, _ := Files(path)
	if len(files) < 3 {
		t.Fatalf("no rotation: %v", files)
	}
	for _, c := range []struct {
		n    int
		want string
	}{{3, "l97 l98 l99"}, {0, ""}, {1, "l99"}} {
		es, err := Tail(files, c.n)
		var got []string
		for _, e := range es {
			got = append(got, string(e.Text))
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Fatalf("tail %d: %v %v, want %s", c.n, got, err, c.want)
		}
	}
	if es, _ := Tail(files, -1); len(es) != 100 {
		t.Fatalf("tail -1: %d lines, want 100", len(es))
	}
}

func TestFollowAcrossRotationAndNewRun(t *testing.T) {
	FollowInterval = 5 * time.Millisecond
	path := filepath.Join(t.TempDir(), "app.log")
	w, _ := Open(path, 500, 3)
	for i := range 10 {
		w.Lines(Stdout, []byte(fmt.Sprintf("l%d\n", i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, path, 2, func(e Entry) error { got <- string(e.Text); return nil })
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l := <-got:
			if l != want {
				t.Fatalf("followed %q, want %q", l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line, want %q", want)
		}
	}
	expect("l8")
	expect("l9")
	// Slow enough that the follower sees every file before it is
	// rotated away: 3 files of 500 bytes hold ~30 lines.
	for i := 10; i < 100; i++ {
		w.Lines(Stdout, []byte(fmt.Sprintf("l%d\n", i)))
		expect(fmt.Sprintf("l%d", i))
	}
	w.Close()
	// A new run of the container: files move to previous, a new one starts.
	if err := KeepPrevious(path); err != nil {
		t.Fatal(err)
	}
	w2, _ := Open(path, 500, 3)
	w2.Lines(Stdout, []byte("second run\n"))
	expect("second run")
	w2.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
