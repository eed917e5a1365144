package reconcile

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

// slow makes the fake's stops of workload stopName and pulls of image
// pullRef wait until release is closed (a PID 1 that ignores SIGTERM
// through a long grace period; a registry that trickles), counting how
// many stops of one container run at once.
type slow struct {
	release  chan struct{}
	mu       sync.Mutex
	stopping map[string]int
	maxStops int
}

func slowFake(stopName, pullRef string) (*fake, *slow) {
	f, s := newFake(), &slow{release: make(chan struct{}), stopping: map[string]int{}}
	wait := func(ctx context.Context) error {
		select {
		case <-s.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.slowStop = func(ctx context.Context, c Container) error {
		s.mu.Lock()
		s.stopping[c.ID]++
		s.maxStops = max(s.maxStops, s.stopping[c.ID])
		s.mu.Unlock()
		defer func() { s.mu.Lock(); s.stopping[c.ID]--; s.mu.Unlock() }()
		if c.Labels[LabelWorkload] == stopName {
			return wait(ctx)
		}
		return nil
	}
	f.slowPull = func(ctx context.Context, ref string) error {
		if ref == pullRef {
			return wait(ctx)
		}
		return nil
	}
	return f, s
}

// running counts the running containers of workload name.
func (f *fake) running(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.cs {
		if c.Labels[LabelWorkload] == name && c.State == StateRunning {
			n++
		}
	}
	return n
}

func replicas(name, image string, n int) []DesiredReplica {
	var out []DesiredReplica
	for i := 0; i < n; i++ {
		g := int64(30)
		out = append(out, DesiredReplica{
			Workload: manifest.Ref{Namespace: "default", Kind: "Deployment", Name: name}, Index: i, SpecHash: "h1",
			Pod: manifest.PodSpec{HostNetwork: true, RestartPolicy: "Always", TerminationGracePeriodSeconds: &g,
				Containers: []manifest.Container{{Name: "main", Image: image}}},
		})
	}
	return out
}

func newTestReconciler(t *testing.T, rt Runtime) *Reconciler {
	t.Helper()
	r, err := New(Config{Node: "n", DataDir: t.TempDir(), Runtime: rt, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// passUntil runs passes (as the agent does on Changes) until cond holds.
func passUntil(t *testing.T, r *Reconciler, desired []DesiredReplica, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s: not reached", what)
		}
		if _, err := r.Sync(context.Background(), desired); err != nil {
			t.Fatal(err)
		}
		select {
		case <-r.Changes():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return time.Since(start)
}

// A replica that takes its whole grace period to stop, and one whose
// image pull hangs, delay nobody else: another workload's new replica
// starts, and Sync returns at once, while they wait.
func TestSlowWorkDelaysOnlyItsReplica(t *testing.T) {
	rt, sl := slowFake("old", "huge:1")
	r := newTestReconciler(t, rt)

	old := replicas("old", "busybox", 1)
	web := replicas("web", "busybox", 1)
	passUntil(t, r, append(old, web...), "first replicas running", func() bool { return rt.running("old") == 1 && rt.running("web") == 1 })

	// old is removed (its stop hangs), web scales to 2, and big needs an
	// image whose pull hangs.
	web = replicas("web", "busybox", 2)
	big := replicas("big", "huge:1", 1)
	desired := append(append([]DesiredReplica{}, web...), big...)
	start := time.Now()
	if _, err := r.Sync(context.Background(), desired); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Sync waited %s for replica work", d)
	}
	passUntil(t, r, desired, "web's second replica running while old stops and big pulls", func() bool { return rt.running("web") == 2 })
	if rt.running("old") != 1 {
		t.Fatalf("old replica: %d running, want 1 still stopping", rt.running("old"))
	}
	// More passes while old is stopping start no second stop of it.
	for i := 0; i < 5; i++ {
		if _, err := r.Sync(context.Background(), desired); err != nil {
			t.Fatal(err)
		}
	}
	obs, _ := r.Sync(context.Background(), desired)
	if st := obs[big[0].Key()]; st.Phase != manifest.PhasePending || st.Reason != "ContainerCreating" {
		t.Fatalf("big while its image pulls: %+v", st)
	}
	close(sl.release)
	passUntil(t, r, desired, "old removed and big running", func() bool { return rt.running("old") == 0 && rt.running("big") == 1 })
	if sl.maxStops != 1 {
		t.Fatalf("a container was stopped by %d workers at once", sl.maxStops)
	}
}

// Close is bounded even while a worker waits on a stop that never ends.
func TestCloseBounded(t *testing.T) {
	rt, _ := slowFake("old", "")
	r := newTestReconciler(t, rt)
	old := replicas("old", "busybox", 1)
	passUntil(t, r, old, "running", func() bool { return rt.running("old") == 1 })
	if _, err := r.Sync(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.Close()
	if d := time.Since(start); d > closeWait+time.Second {
		t.Fatalf("Close took %s", d)
	}
}

// Work items of one replica keep their order: the stale container is
// removed before the new spec's container is created.
func TestReplaceOrder(t *testing.T) {
	rt := newFake()
	r := newTestReconciler(t, rt)
	v1 := replicas("app", "busybox", 1)
	passUntil(t, r, v1, "v1 running", func() bool { return rt.running("app") == 1 })
	v2 := replicas("app", "busybox", 1)
	v2[0].SpecHash = "h2"
	passUntil(t, r, v2, "v2 running", func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		for _, c := range rt.cs {
			if c.Labels[LabelSpecHash] == "h2" && c.State == StateRunning {
				return len(rt.cs) == 1
			}
		}
		return false
	})
}
