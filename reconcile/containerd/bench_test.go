package containerd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
)

// BenchmarkStart50 compares bringing 50 replicas from nothing to running
// through the reconciler (list, diff, parallel apply, observe) with a plain
// sequential loop over containerd's client doing the same work.
func BenchmarkStart50(b *testing.B) {
	rt, _ := newRuntime(b)
	ctx := context.Background()
	if err := rt.EnsureImage(ctx, "busybox", "IfNotPresent"); err != nil {
		b.Fatal(err)
	}
	var desired []reconcile.DesiredReplica
	for i := 0; i < 50; i++ {
		d := reconcile.DesiredReplica{Workload: manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "bench"}, Index: i, SpecHash: "h"}
		g := int64(0)
		d.Pod = manifest.PodSpec{RestartPolicy: "Always", TerminationGracePeriodSeconds: &g,
			Containers: []manifest.Container{{Name: "main", Image: "busybox:latest", ImagePullPolicy: "IfNotPresent", Command: []string{"sleep", "1000"}}}}
		desired = append(desired, d)
	}
	clear := func() {
		cs, err := rt.List(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range cs {
			if err := rt.Remove(ctx, c.ID); err != nil {
				b.Fatal(err)
			}
		}
		nctx := namespaces.WithNamespace(ctx, testNS)
		pcs, _ := rt.client.Containers(nctx)
		for _, c := range pcs {
			if len(c.ID()) < 6 || c.ID()[:6] != "plain-" {
				continue
			}
			if t, err := c.Task(nctx, nil); err == nil {
				_, _ = t.Delete(nctx, containerd.WithProcessKill)
			}
			_ = c.Delete(nctx, containerd.WithSnapshotCleanup)
		}
	}

	b.Run("reconciler", func(b *testing.B) {
		dataDir := b.TempDir()
		// Replicas' network namespaces are mounted below the data dir.
		b.Cleanup(func() { testenv.UnmountBelow(dataDir) })
		rec, err := reconcile.New(reconcile.Config{Node: "n", DataDir: dataDir, Runtime: rt, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			clear()
			b.StartTimer()
			st := syncDone(b, rec, desired)
			for k, s := range st {
				if s.Phase != manifest.PhaseRunning {
					b.Fatalf("%v: %+v", k, s)
				}
			}
		}
		b.StopTimer()
		clear()
	})

	b.Run("plain-loop", func(b *testing.B) {
		// Same namespace (images are per namespace), unlabelled ids.
		nctx := namespaces.WithNamespace(ctx, testNS)
		img, err := rt.client.GetImage(nctx, "docker.io/library/busybox:latest")
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			clear()
			b.StartTimer()
			for j := 0; j < 50; j++ {
				id := fmt.Sprintf("plain-%d", j)
				c, err := rt.client.NewContainer(nctx, id, containerd.WithNewSnapshot(id, img),
					containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "1000")))
				if err != nil {
					b.Fatal(err)
				}
				t, err := c.NewTask(nctx, cio.NullIO)
				if err != nil {
					b.Fatal(err)
				}
				if err := t.Start(nctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		clear()
	})
}
