package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
)

// maxExecOutput bounds what Exec keeps of a command's output.
const maxExecOutput = 10 << 10

// Exec runs cmd in the running container id, with the container's own
// process settings (user, env, cwd, capabilities), and waits for it.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string) (int, []byte, error) {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return -1, nil, wrap("load "+id, err)
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		return -1, nil, wrap("task of "+id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, nil, wrap("spec of "+id, err)
	}
	if spec.Process == nil {
		return -1, nil, fmt.Errorf("exec in %s: container has no process spec", id)
	}
	ps := *spec.Process
	ps.Args = cmd
	ps.Terminal = false
	var b [6]byte
	_, _ = rand.Read(b[:])
	execID := "exec-" + hex.EncodeToString(b[:])
	out := &capped{max: maxExecOutput}
	p, err := t.Exec(ctx, execID, &ps, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return -1, nil, wrap("exec in "+id, err)
	}
	// Delete even when ctx is over: an exec process left behind would
	// hold the container's task.
	defer func() {
		dctx, cancel := context.WithTimeout(r.ctx(context.Background()), 5*time.Second)
		defer cancel()
		_, _ = p.Delete(dctx, containerd.WithProcessKill)
	}()
	exited, err := p.Wait(ctx)
	if err != nil {
		return -1, nil, wrap("wait exec in "+id, err)
	}
	if err := p.Start(ctx); err != nil {
		return -1, nil, wrap("start exec in "+id, err)
	}
	select {
	case st := <-exited:
		if io := p.IO(); io != nil {
			io.Wait()
		}
		code, _, err := st.Result()
		if err != nil {
			return -1, out.Bytes(), wrap("exec in "+id, err)
		}
		return int(code), out.Bytes(), nil
	case <-ctx.Done():
		kctx, cancel := context.WithTimeout(r.ctx(context.Background()), 2*time.Second)
		_ = p.Kill(kctx, syscall.SIGKILL)
		cancel()
		return -1, out.Bytes(), ctx.Err()
	}
}

// capped is a concurrency-safe buffer that keeps the first max bytes.
type capped struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...)
}
