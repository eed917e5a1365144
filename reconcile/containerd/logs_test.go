package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
)

// TestMain lets this test binary be the log writer containerd's shim
// starts, as the driftless binary is for the agent.
func TestMain(m *testing.M) {
	if containerlog.IsWriterInvocation(os.Args[1:]) {
		os.Exit(containerlog.RunWriter(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

func logWriter(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// readLog returns the entries of a run's files, oldest first.
func readLog(t testing.TB, path string) []containerlog.Entry {
	t.Helper()
	files, err := containerlog.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []containerlog.Entry
	if err := containerlog.Read(files, func(e containerlog.Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// lastTick is the highest n of the "tick n" lines of the run at path.
func lastTick(t testing.TB, path string) int {
	last := -1
	for _, e := range readLog(t, path) {
		if n, err := strconv.Atoi(strings.TrimPrefix(string(e.Text), "tick ")); err == nil && n > last {
			last = n
		}
	}
	return last
}

func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	testenv.Until(t, what, d, ok)
}

// loggerOf finds the log writer process of a log path and its parent.
func loggerOf(t testing.TB, path string) (pid, ppid int, parent string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(containerlog.WriterFlag)) || !bytes.Contains(b, []byte(path)) {
			continue
		}
		pid, _ = strconv.Atoi(filepath.Base(filepath.Dir(p)))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// pid (comm) state ppid ...
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		ppid, _ = strconv.Atoi(f[1])
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
		return pid, ppid, strings.TrimSpace(string(comm))
	}
	t.Fatalf("no log writer process for %s", path)
	return
}

// The shim's log writer gets both streams, rotates at the size limit and
// keeps at most the configured files; it is the shim's child, so the
// container keeps logging with the agent's connection and containerd
// itself gone; a new run keeps the last one as the previous log.
func TestLogWriterRotatesAndOutlivesTheAgent(t *testing.T) {
	cd := testenv.StartContainerd(t)
	images := filepath.Dir(testenv.BusyboxArchive(t))
	const maxSize, maxFiles = 4096, 3
	rt, err := New(context.Background(), Config{Address: cd.Address, Namespace: testNS, ImagesDir: images,
		LogWriter: logWriter(t), LogMaxSize: maxSize, LogMaxFiles: maxFiles})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := spec(t, "ticker", "sh", "-c", `echo to-out; echo to-err >&2; i=0; while true; do echo "tick $i"; i=$((i+1)); usleep 5000; done`)
	run(t, rt, s)
	waitState(t, rt, "ticker", reconcile.StateRunning)

	var sawOut, sawErr bool
	waitFor(t, "both streams in the log", 10*time.Second, func() bool {
		for _, e := range readLog(t, s.LogPath) {
			sawOut = sawOut || (e.Stream == containerlog.Stdout && string(e.Text) == "to-out")
			sawErr = sawErr || (e.Stream == containerlog.Stderr && string(e.Text) == "to-err")
		}
		return sawOut && sawErr
	})
	// ~30 bytes of record per tick: 4 KiB rotates every ~100 ticks.
	waitFor(t, "rotation", 20*time.Second, func() bool { return lastTick(t, s.LogPath) > 6*maxSize/40 })
	files, _ := containerlog.Files(s.LogPath)
	if len(files) != maxFiles {
		t.Fatalf("files %v, want %d", files, maxFiles)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > maxSize {
			t.Fatalf("%s: %v bytes > %d (%v)", f, fi.Size(), maxSize, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(s.LogPath))
	if len(entries) != maxFiles {
		t.Fatalf("%d files in the log dir, want %d", len(entries), maxFiles)
	}
	// The kept ticks are contiguous: nothing lost inside the window.
	prev := -1
	for _, e := range readLog(t, s.LogPath) {
		n, err := strconv.Atoi(strings.TrimPrefix(string(e.Text), "tick "))
		if err != nil {
			continue
		}
		if prev >= 0 && n != prev+1 {
			t.Fatalf("tick %d after tick %d", n, prev)
		}
		prev = n
	}

	pid, ppid, parent := loggerOf(t, s.LogPath)
	if ppid == os.Getpid() || !strings.HasPrefix(parent, "containerd-shim") {
		t.Fatalf("log writer %d: parent %d %q, want containerd's shim", pid, ppid, parent)
	}

	// The agent goes away, and containerd with it: the shim and its
	// writer keep the container logging.
	rt.Close()
	cd.Stop(t)
	before := lastTick(t, s.LogPath)
	waitFor(t, "ticks with the agent and containerd gone", 10*time.Second, func() bool {
		return lastTick(t, s.LogPath) > before+200
	})

	cd.Restart(t)
	rt2, err := New(ctx, Config{Address: cd.Address, Namespace: testNS, ImagesDir: images,
		LogWriter: logWriter(t), LogMaxSize: maxSize, LogMaxFiles: maxFiles})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if err := rt2.Stop(ctx, "ticker", 0); err != nil {
		t.Fatal(err)
	}
	waitState(t, rt2, "ticker", reconcile.StateExited)
	ended := lastTick(t, s.LogPath)
	stopped := time.Now()
	if err := rt2.Start(ctx, "ticker"); err != nil {
		t.Fatal(err)
	}
	// The ticker fills its files in about a second: the new run's first
	// line may be rotated away already; what counts is that every line in
	// the current files is the new run's.
	waitFor(t, "the new run's lines", 10*time.Second, func() bool {
		es := readLog(t, s.LogPath)
		for _, e := range es {
			if e.Time.Before(stopped) {
				return false
			}
		}
		return len(es) > 0
	})
	if got := lastTick(t, containerlog.PreviousPath(s.LogPath)); got != ended {
		t.Fatalf("previous run's last tick %d, want %d", got, ended)
	}
	if err := rt2.Remove(ctx, "ticker"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLogThroughput measures lines per second from a container's
// stdout to its log file: through the shim's log writer (records with
// timestamps, rotation at the default 10 MiB) against containerd's plain
// file driver, in the same run. Each iteration is a container printing
// 500,000 lines; the time includes its start and stop.
func BenchmarkLogThroughput(b *testing.B) {
	cd := testenv.StartContainerd(b)
	images := filepath.Dir(testenv.BusyboxArchive(b))
	const lines = 500000
	for _, c := range []struct {
		name   string
		writer string
	}{{"writer", logWriter(b)}, {"file", ""}} {
		b.Run(c.name, func(b *testing.B) {
			rt, err := New(context.Background(), Config{Address: cd.Address, Namespace: testNS, ImagesDir: images, LogWriter: c.writer})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			ctx := context.Background()
			if err := rt.EnsureImage(ctx, "busybox:latest", "IfNotPresent"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("tp-%s-%d", c.name, i)
				s := spec(b, id, "seq", "1", strconv.Itoa(lines))
				if err := rt.Create(ctx, s); err != nil {
					b.Fatal(err)
				}
				if err := rt.Start(ctx, id); err != nil {
					b.Fatal(err)
				}
				waitFor(b, "all lines in the log", time.Minute, func() bool {
					files, _ := containerlog.Files(s.LogPath)
					n := 0
					for _, f := range files {
						d, _ := os.ReadFile(f)
						n += bytes.Count(d, []byte{'\n'})
					}
					return n >= lines
				})
				b.StopTimer()
				if err := rt.Remove(ctx, id); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
