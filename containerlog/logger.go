package containerlog

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// WriterFlag marks an invocation of the driftless binary as a container's
// logger. containerd's shim turns the query of a binary:// log URI into
// arguments in map order, so the logger cannot be a leading subcommand: it
// is recognised by this flag, wherever it is, whose value is the log path.
const WriterFlag = "--log-writer"

// Args are the arguments of a logger invocation, as a containerd binary
// log URI query (cio.BinaryIO): every key is a flag with its value.
func Args(path string, maxSize int64, maxFiles int) map[string]string {
	return map[string]string{
		WriterFlag:    path,
		"--max-size":  strconv.FormatInt(maxSize, 10),
		"--max-files": strconv.Itoa(maxFiles),
	}
}

// IsWriterInvocation reports whether args (without the program name) are a
// logger invocation.
func IsWriterInvocation(args []string) bool {
	for _, a := range args {
		if a == WriterFlag || len(a) > len(WriterFlag) && a[:len(WriterFlag)+1] == WriterFlag+"=" {
			return true
		}
	}
	return false
}

// ParseSize parses a size in bytes or as a Kubernetes quantity (10Mi).
func ParseSize(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	n, ok := q.AsInt64()
	if !ok || n <= 0 {
		return 0, fmt.Errorf("size %q: must be a positive number of bytes", s)
	}
	return n, nil
}

// RunWriter is the logger process containerd's shim starts for a task:
// the container's stdout and stderr are fds 3 and 4, and closing fd 5
// tells the shim the logger is ready (the task starts after that). It
// keeps the last run's files as the previous run's, then writes every line
// as it comes until both streams end. The shim's SIGTERM (sent once the
// task is gone) gives it a moment to drain what is left. Returns the exit
// code; errors go to stderr, which the shim discards, so the ready signal
// is sent only once the file is open.
func RunWriter(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("log-writer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String(WriterFlag[2:], "", "log file")
	maxSize := fs.String("max-size", strconv.Itoa(DefaultMaxSize), "rotate the file before it grows beyond this size")
	maxFiles := fs.Int("max-files", DefaultMaxFiles, "files kept, the current one included")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	size, err := ParseSize(*maxSize)
	if err != nil {
		fmt.Fprintln(stderr, "log writer:", err)
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "log writer: --log-writer PATH is required")
		return 2
	}
	// Non-blocking descriptors make pollable Files, whose Close ends a
	// pending Read: the drain deadline below relies on it.
	for _, fd := range []int{3, 4} {
		_ = syscall.SetNonblock(fd, true)
	}
	stdout, stderrIn, ready := os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "ready")
	if stdout == nil || stderrIn == nil || ready == nil {
		fmt.Fprintln(stderr, "log writer: fds 3, 4 and 5 must be open (started by containerd's shim)")
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// The shim's SIGTERM must not stop the writer before the streams are
	// drained: it only starts a deadline.
	signal.Ignore(syscall.SIGPIPE)

	if err := KeepPrevious(*path); err != nil {
		fmt.Fprintln(stderr, "log writer:", err)
	}
	w, err := Open(*path, size, *maxFiles)
	if err != nil {
		fmt.Fprintln(stderr, "log writer:", err)
		ready.Close()
		return 1
	}
	defer w.Close()
	ready.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sig:
			time.Sleep(2 * time.Second)
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := Copy(ctx, w, stdout, stderrIn); err != nil {
		fmt.Fprintln(stderr, "log writer:", err)
		return 1
	}
	return 0
}

// Copy writes the lines of both streams to w until both end or ctx is
// done (then the streams are closed to unblock their reads).
func Copy(ctx context.Context, w *Writer, stdout, stderr io.ReadCloser) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []struct {
		name string
		r    io.ReadCloser
	}{{Stdout, stdout}, {Stderr, stderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = copyStream(w, s.name, s.r)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		stdout.Close()
		stderr.Close()
		<-done
	}
	return errors.Join(errs...)
}

// copyStream reads r and writes its complete lines as soon as a read
// returns them. An unfinished line waits for its end until the buffer is
// full, then goes out as partial records; at the end of the stream it is
// written as a line.
func copyStream(w *Writer, stream string, r io.Reader) error {
	buf := make([]byte, 4*MaxLine)
	pending := 0
	for {
		n, err := r.Read(buf[pending:])
		pending += n
		if n > 0 {
			if end := bytes.LastIndexByte(buf[:pending], '\n'); end >= 0 {
				if werr := w.Lines(stream, buf[:end+1]); werr != nil {
					return werr
				}
				pending = copy(buf, buf[end+1:pending])
			}
			if pending == len(buf) {
				if werr := w.Partial(stream, buf); werr != nil {
					return werr
				}
				pending = 0
			}
		}
		if err != nil {
			if pending > 0 {
				if werr := w.Lines(stream, buf[:pending]); werr != nil {
					return werr
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read %s: %w", stream, err)
		}
	}
}
