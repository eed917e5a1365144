package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Require fails (under CI=true) or skips the test when a binary is missing.
func Require(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found in PATH (CI=true: the harness must have it): %v", b, err)
			}
			t.Skipf("%s not found in PATH: %v", b, err)
		}
	}
}

// gitEnv isolates git from the host's and user's configuration.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=tester", "GIT_AUTHOR_EMAIL=tester@example.invalid",
		"GIT_COMMITTER_NAME=tester", "GIT_COMMITTER_EMAIL=tester@example.invalid",
		"GIT_TERMINAL_PROMPT=0")
}

// Git runs git in dir and returns its trimmed output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// InitBareRepo creates a bare repository with default branch main.
func InitBareRepo(t testing.TB, dir string) {
	t.Helper()
	Require(t, "git")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, "init", "-q", "--bare", "-b", "main")
	Git(t, dir, "config", "daemon.receivepack", "true")
}

// NewBareRepo creates a bare repository in a temp dir and returns its
// directory and file:// URL.
func NewBareRepo(t testing.TB) (dir, url string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "repo.git")
	InitBareRepo(t, dir)
	return dir, "file://" + dir
}

// WorkClone is a person's clone: write files, commit, push.
type WorkClone struct {
	t   testing.TB
	Dir string
}

// NewWorkClone clones url (an empty repository is fine) into a temp dir.
func NewWorkClone(t testing.TB, url string) *WorkClone {
	t.Helper()
	Require(t, "git")
	dir := filepath.Join(t.TempDir(), "work")
	Git(t, filepath.Dir(dir), "clone", "-q", url, dir)
	Git(t, dir, "checkout", "-q", "-B", "main")
	return &WorkClone{t: t, Dir: dir}
}

// WriteFile writes rel (creating directories).
func (w *WorkClone) WriteFile(rel, content string) {
	w.t.Helper()
	p := filepath.Join(w.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// Remove deletes rel.
func (w *WorkClone) Remove(rel string) {
	w.t.Helper()
	if err := os.Remove(filepath.Join(w.Dir, rel)); err != nil {
		w.t.Fatal(err)
	}
}

// Commit commits everything and returns the commit id.
func (w *WorkClone) Commit(msg string) string {
	w.t.Helper()
	Git(w.t, w.Dir, "add", "-A")
	Git(w.t, w.Dir, "commit", "-q", "--allow-empty", "-m", msg)
	return Git(w.t, w.Dir, "rev-parse", "HEAD")
}

// Push pushes main.
func (w *WorkClone) Push() {
	w.t.Helper()
	Git(w.t, w.Dir, "push", "-q", "origin", "main")
}

// Pull fast-forwards main to the remote's (commits made elsewhere, such
// as by the CLI's suspend).
func (w *WorkClone) Pull() {
	w.t.Helper()
	Git(w.t, w.Dir, "pull", "-q", "--ff-only", "origin", "main")
}

// Tag creates a lightweight tag at HEAD and pushes it.
func (w *WorkClone) Tag(name string) {
	w.t.Helper()
	Git(w.t, w.Dir, "tag", name)
	Git(w.t, w.Dir, "push", "-q", "origin", name)
}

// Daemon is a `git daemon` serving a base directory on loopback.
type Daemon struct {
	URL  string // git://127.0.0.1:PORT
	host string
	base string
	port string
	cmd  *exec.Cmd
	hang net.Listener
	// log is the daemon's --verbose output: a line per connection and
	// per request.
	logMu sync.Mutex
	log   strings.Builder
}

func (d *Daemon) Write(p []byte) (int, error) {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.Write(p)
}

// Requests counts the upload-pack (fetch) and receive-pack (push)
// requests the daemon served, by client address (its IP).
func (d *Daemon) Requests() map[string]int {
	return d.requests("upload-pack", "receive-pack")
}

// Fetches counts the upload-pack (fetch) requests alone, by client IP.
func (d *Daemon) Fetches() map[string]int {
	return d.requests("upload-pack")
}

func (d *Daemon) requests(services ...string) map[string]int {
	d.logMu.Lock()
	text := d.log.String()
	d.logMu.Unlock()
	// "[pid] Connection from IP:PORT" then "[pid] Request upload-pack for ..."
	from := map[string]string{}
	out := map[string]int{}
	for _, l := range strings.Split(text, "\n") {
		pid, rest, ok := strings.Cut(l, "] ")
		if !ok {
			continue
		}
		if a, ok := strings.CutPrefix(rest, "Connection from "); ok {
			host, _, err := net.SplitHostPort(strings.TrimSpace(a))
			if err == nil {
				from[pid] = host
			}
			continue
		}
		for _, svc := range services {
			if strings.HasPrefix(rest, "Request "+svc) {
				out[from[pid]]++
			}
		}
	}
	return out
}

// GitDaemon serves base (read and push) on a free loopback port until the
// test ends.
func GitDaemon(t testing.TB, base string) *Daemon {
	t.Helper()
	Require(t, "git")
	_, port, _ := net.SplitHostPort(FreePort(t))
	return GitDaemonOn(t, base, "127.0.0.1", port)
}

// GitDaemonOn serves base on host:port (a LAN's gateway address, so that
// hosts in their own network namespaces fetch and push over the network).
func GitDaemonOn(t testing.TB, base, host, port string) *Daemon {
	t.Helper()
	Require(t, "git")
	d := &Daemon{URL: "git://" + net.JoinHostPort(host, port), base: base, host: host, port: port}
	d.Start(t)
	t.Cleanup(func() { d.Stop(t) })
	return d
}

// Start starts (or restarts) the daemon on the same port.
func (d *Daemon) Start(t testing.TB) {
	t.Helper()
	if d.cmd != nil {
		return
	}
	d.unhang()
	cmd := exec.Command("git", "daemon", "--verbose", "--reuseaddr", "--export-all", "--enable=receive-pack",
		"--base-path="+d.base, "--listen="+d.host, "--port="+d.port, d.base)
	cmd.Env = gitEnv()
	cmd.Stderr = d
	// `git daemon` runs git-daemon as a child: a process group lets Stop
	// kill both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("git daemon: %v", err)
	}
	d.cmd = cmd
	if !Listening(net.JoinHostPort(d.host, d.port), 10*time.Second) {
		t.Fatalf("git daemon did not listen on %s", d.port)
	}
}

// Listening waits up to timeout for a TCP server to accept on addr.
func Listening(addr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the daemon; the repositories stay.
func (d *Daemon) Stop(t testing.TB) {
	if d.cmd == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
	// git daemon forks a child per connection; wait until the port is free.
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", net.JoinHostPort(d.host, d.port))
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
}

// Hang replaces the daemon with a server on the same port that accepts
// every connection and never answers (a stalled host or a hung proxy),
// until Start. Accepted connections are held open, then closed by Start.
func (d *Daemon) Hang(t testing.TB) {
	t.Helper()
	d.Stop(t)
	var err error
	for i := 0; i < 100; i++ {
		if d.hang, err = net.Listen("tcp", net.JoinHostPort(d.host, d.port)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("hanging server on %s: %v", d.port, err)
	}
	l := d.hang
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { l.Close() })
}

func (d *Daemon) unhang() {
	if d.hang != nil {
		d.hang.Close()
		d.hang = nil
	}
}
