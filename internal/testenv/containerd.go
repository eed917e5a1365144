package testenv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"driftless.dev/driftless/internal/ociimage"
)

// Namespace returns base plus a suffix unique to this test process. runc
// keeps container state under /run/containerd/runc/<namespace>/<id>
// whatever containerd's state dir, so two daemons on one machine must not
// share a namespace and container ids.
func Namespace(base string) string {
	return fmt.Sprintf("%s-t%d", base, os.Getpid())
}

// Containerd is a private containerd daemon: its own root, state and
// socket under a temp dir, stopped and cleaned when the test ends.
type Containerd struct {
	Address string
	Dir     string
	cmd     *exec.Cmd
	config  string
	// netns is the network namespace containerd runs in ("" this one).
	netns string
	log   *os.File
	// namespaces seen at cleanup, whose runc state dirs are removed
	namespaces []string
}

// RequireRoot fails (CI) or skips when not root: containerd needs it.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("containerd tests need root (CI=true)")
		}
		t.Skip("containerd tests need root")
	}
}

// StartContainerd starts a private containerd and waits until it answers.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	return StartContainerdIn(t, "")
}

// StartContainerdIn starts a private containerd inside the network
// namespace at netns (entered with nsenter --net; "" is this process's).
func StartContainerdIn(t testing.TB, netns string) *Containerd {
	t.Helper()
	if testing.Short() {
		// -short runs the pure-logic tests only (make test-short); CI
		// runs everything.
		if os.Getenv("CI") == "true" {
			t.Fatal("containerd tests do not run with -short under CI=true")
		}
		t.Skip("-short: skipping a test that needs containerd")
	}
	Require(t, "containerd", "runc", "containerd-shim-runc-v2")
	RequireRoot(t)
	// Unix socket paths are limited to 108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("/tmp", "dl-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Address: filepath.Join(dir, "c.sock"), Dir: dir, config: filepath.Join(dir, "config.toml"), netns: netns}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Address)
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(t)
	t.Cleanup(func() { c.cleanup(t) })
	return c
}

func (c *Containerd) start(t testing.TB) {
	t.Helper()
	lf, err := os.OpenFile(filepath.Join(c.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.log = lf
	cmd := exec.Command("containerd", "--config", c.config)
	if c.netns != "" {
		cmd = exec.Command("nsenter", "--net="+c.netns, "containerd", "--config", c.config)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	c.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		cl, err := containerd.New(c.Address, containerd.WithTimeout(time.Second))
		if err == nil {
			_, verr := cl.Version(context.Background())
			cl.Close()
			if verr == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(c.Dir, "containerd.log"))
	t.Fatalf("containerd did not start:\n%s", b)
}

// Stop kills the daemon (not its shims: tasks keep running, as after a
// containerd crash).
func (c *Containerd) Stop(t testing.TB) {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	c.cmd = nil
	if c.log != nil {
		c.log.Close()
	}
}

// Restart stops and starts the daemon on the same root and socket.
func (c *Containerd) Restart(t testing.TB) {
	t.Helper()
	c.Stop(t)
	c.start(t)
}

// Client returns a client, closed when the test ends.
func (c *Containerd) Client(t testing.TB) *containerd.Client {
	t.Helper()
	cl, err := containerd.New(c.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func (c *Containerd) cleanup(t testing.TB) {
	if c.cmd != nil {
		if cl, err := containerd.New(c.Address, containerd.WithTimeout(2*time.Second)); err == nil {
			ctx := context.Background()
			nss, _ := cl.NamespaceService().List(ctx)
			c.namespaces = nss
			for _, ns := range nss {
				nctx := namespaces.WithNamespace(ctx, ns)
				cs, _ := cl.Containers(nctx)
				for _, ctr := range cs {
					// Bounded: a task whose exit never comes (its shim
					// stuck) is killed with the shims below.
					dctx, cancel := context.WithTimeout(nctx, 10*time.Second)
					if task, err := ctr.Task(dctx, nil); err == nil {
						_, _ = task.Delete(dctx, containerd.WithProcessKill)
					}
					_ = ctr.Delete(dctx, containerd.WithSnapshotCleanup)
					cancel()
				}
			}
			cl.Close()
		}
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		c.cmd = nil
	}
	// Shims of this daemon outlive it: kill them by their -address.
	_ = exec.Command("pkill", "-KILL", "-f", "containerd-shim-runc-v2 .*-address "+c.Address).Run()
	for _, ns := range c.namespaces {
		_ = os.RemoveAll(filepath.Join("/run/containerd/runc", ns))
	}
	unmountBelow(c.Dir)
	if err := os.RemoveAll(c.Dir); err != nil {
		time.Sleep(200 * time.Millisecond)
		unmountBelow(c.Dir)
		_ = os.RemoveAll(c.Dir)
	}
}

// UnmountBelow detaches every mount below dir (deepest first), e.g. the
// tmpfs volumes an agent made under its data dir.
func UnmountBelow(dir string) { unmountBelow(dir) }

func unmountBelow(dir string) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			mps = append(mps, fields[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	for _, m := range mps {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

var (
	busyboxOnce sync.Once
	busyboxPath string
	busyboxErr  error
)

// BusyboxArchive returns the path of a busybox OCI archive named
// docker.io/library/busybox:latest, built once per test process in a
// directory of its own (usable as an images dir).
func BusyboxArchive(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(ociimage.BusyboxPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("busybox-static not installed: %v", err)
		}
		t.Skipf("busybox-static not installed: %v", err)
	}
	busyboxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dl-images-")
		if err != nil {
			busyboxErr = err
			return
		}
		busyboxPath = filepath.Join(dir, "busybox.tar")
		busyboxErr = ociimage.BuildBusyboxFile(busyboxPath, "docker.io/library/busybox:latest")
	})
	if busyboxErr != nil {
		t.Fatalf("build busybox image: %v", busyboxErr)
	}
	return busyboxPath
}
