package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"pgregory.net/rapid"

	"driftless.dev/driftless/manifest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func replica(name string, idx int, hash, policy string, containers ...string) DesiredReplica {
	d := DesiredReplica{Workload: manifest.Ref{Namespace: "default", Kind: "Deployment", Name: name}, Index: idx, SpecHash: hash}
	d.Pod.RestartPolicy = policy
	for _, c := range containers {
		d.Pod.Containers = append(d.Pod.Containers, manifest.Container{Name: c, Image: "busybox:1"})
	}
	return d
}

func ctr(d DesiredReplica, c string, st State, exit int, restarts int, finished time.Time) Container {
	return Container{ID: ContainerID(d.Workload, d.Index, c, d.SpecHash), State: st, ExitCode: exit, FinishedAt: finished,
		Labels: map[string]string{LabelRestarts: strconv.Itoa(restarts), LabelGrace: "5"}}
}

func TestDiff(t *testing.T) {
	web := replica("web", 0, "h1", "Always", "main")
	job := replica("job", 0, "h1", "Never", "main")
	onf := replica("onf", 0, "h1", "OnFailure", "main")
	old := replica("web", 0, "h0", "Always", "main")
	done := replica("job", 1, "h1", "Never", "main")
	done.Finished = true
	cases := []struct {
		name    string
		desired []DesiredReplica
		actual  []Container
		create  int
		restart []string
		remove  []string
		wake    time.Time
	}{
		{"create missing", []DesiredReplica{web}, nil, 1, nil, nil, time.Time{}},
		{"adopt running", []DesiredReplica{web}, []Container{ctr(web, "main", StateRunning, 0, 0, time.Time{})}, 0, nil, nil, time.Time{}},
		{"replace on hash change", []DesiredReplica{web}, []Container{ctr(old, "main", StateRunning, 0, 0, time.Time{})}, 1, nil, []string{ctr(old, "main", "", 0, 0, time.Time{}).ID}, time.Time{}},
		{"remove undesired", nil, []Container{ctr(web, "main", StateRunning, 0, 0, time.Time{})}, 0, nil, []string{ctr(web, "main", "", 0, 0, time.Time{}).ID}, time.Time{}},
		{"restart after back-off", []DesiredReplica{web}, []Container{ctr(web, "main", StateExited, 1, 0, t0.Add(-11*time.Second))}, 0, []string{ctr(web, "main", "", 0, 0, time.Time{}).ID}, nil, time.Time{}},
		{"wait for back-off", []DesiredReplica{web}, []Container{ctr(web, "main", StateExited, 1, 2, t0.Add(-10*time.Second))}, 0, nil, nil, t0.Add(30 * time.Second)},
		{"never restarts", []DesiredReplica{job}, []Container{ctr(job, "main", StateExited, 1, 0, t0.Add(-time.Hour))}, 0, nil, nil, time.Time{}},
		{"on failure: success stays", []DesiredReplica{onf}, []Container{ctr(onf, "main", StateExited, 0, 0, t0.Add(-time.Hour))}, 0, nil, nil, time.Time{}},
		{"on failure: failure restarts", []DesiredReplica{onf}, []Container{ctr(onf, "main", StateExited, 2, 0, t0.Add(-time.Hour))}, 0, []string{ctr(onf, "main", "", 0, 0, time.Time{}).ID}, nil, time.Time{}},
		{"finished job replica: kept, not recreated", []DesiredReplica{done}, nil, 0, nil, nil, time.Time{}},
		{"finished job replica: container kept", []DesiredReplica{done}, []Container{ctr(done, "main", StateExited, 1, 0, t0.Add(-time.Hour))}, 0, nil, nil, time.Time{}},
		{"created starts", []DesiredReplica{web}, []Container{ctr(web, "main", StateCreated, 0, 0, time.Time{})}, 0, []string{ctr(web, "main", "", 0, 0, time.Time{}).ID}, nil, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Diff(tc.desired, tc.actual, BackoffState{}, t0)
			var removes []string
			for _, r := range p.Remove {
				removes = append(removes, r.ID)
				if r.Grace != 5*time.Second {
					t.Fatalf("grace from label: %s", r.Grace)
				}
			}
			if len(p.Create) != tc.create || !reflect.DeepEqual(p.Restart, tc.restart) || !reflect.DeepEqual(removes, tc.remove) || !p.Wake.Equal(tc.wake) {
				t.Fatalf("plan %+v", p)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for n, w := range want {
		if got := Backoff(n); got != w {
			t.Fatalf("Backoff(%d) = %s, want %s", n, got, w)
		}
	}
	// A container that ran for 10 minutes starts over.
	c := Container{StartedAt: t0, FinishedAt: t0.Add(11 * time.Minute), Labels: map[string]string{LabelRestarts: "6"}}
	if due := RestartDue(c, time.Time{}); due != c.FinishedAt.Add(10*time.Second) {
		t.Fatalf("due %s", due)
	}
}

func TestContainerIDs(t *testing.T) {
	long := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: strings.Repeat("a", 250)}
	id := ContainerID(long, 3, "main", "h")
	if len(id) > 76 || !strings.HasPrefix(id, "aaaa") {
		t.Fatalf("id %q (%d)", id, len(id))
	}
	r := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	a, b := ContainerID(r, 1, "main", "h1"), ContainerID(r, 1, "main", "h2")
	if a == b || !strings.HasPrefix(a, "web-1-main-") {
		t.Fatalf("%s %s", a, b)
	}
}

// fake is a Runtime in memory, with function fields to inject failures.
type fake struct {
	mu         sync.Mutex
	cs         map[string]*Container
	specs      map[string]ContainerSpec
	failImage  func(ref string) error
	failCreate func(id string) error
	// slowPull and slowStop, when set, run first in EnsureImage and Stop
	// (outside the lock): a pull or a stop that takes its time.
	slowPull func(ctx context.Context, ref string) error
	slowStop func(ctx context.Context, c Container) error
	calls    []string
}

func newFake() *fake { return &fake{cs: map[string]*Container{}, specs: map[string]ContainerSpec{}} }

func (f *fake) List(context.Context) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Container
	for _, c := range f.cs {
		cp := *c
		cp.Labels = map[string]string{}
		for k, v := range c.Labels {
			cp.Labels[k] = v
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
func (f *fake) record(s string) { f.mu.Lock(); f.calls = append(f.calls, s); f.mu.Unlock() }
func (f *fake) EnsureImage(ctx context.Context, ref, _ string) error {
	if f.slowPull != nil {
		if err := f.slowPull(ctx, ref); err != nil {
			return err
		}
	}
	if f.failImage != nil {
		return f.failImage(ref)
	}
	return nil
}
func (f *fake) Create(_ context.Context, s ContainerSpec) error {
	if f.failCreate != nil {
		if err := f.failCreate(s.ID); err != nil {
			return err
		}
	}
	f.record("create " + s.ID)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cs[s.ID] = &Container{ID: s.ID, Labels: s.Labels, State: StateCreated}
	f.specs[s.ID] = s
	return nil
}
func (f *fake) Start(_ context.Context, id string) error {
	f.record("start " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cs[id]
	if !ok {
		return ErrNotFound
	}
	c.State = StateRunning
	return nil
}
func (f *fake) Stop(ctx context.Context, id string, _ time.Duration) error {
	f.record("stop " + id)
	if f.slowStop != nil {
		f.mu.Lock()
		c, ok := f.cs[id]
		var cp Container
		if ok {
			cp = *c
		}
		f.mu.Unlock()
		if err := f.slowStop(ctx, cp); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.cs[id]; ok {
		c.State = StateExited
		c.ExitCode = 143
	}
	return nil
}
func (f *fake) Remove(_ context.Context, id string) error {
	f.record("remove " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cs, id)
	return nil
}
func (f *fake) SetLabels(_ context.Context, id string, l map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cs[id]
	if !ok {
		return ErrNotFound
	}
	for k, v := range l {
		c.Labels[k] = v
	}
	return nil
}
func (f *fake) exit(id string, code int, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cs[id].State, f.cs[id].ExitCode, f.cs[id].FinishedAt = StateExited, code, at
}

func newRec(t *testing.T, f *fake, now *time.Time) *Reconciler {
	dir := t.TempDir()
	t.Cleanup(func() {
		nss, _ := os.ReadDir(filepath.Join(dir, "netns"))
		for _, e := range nss {
			_ = RemoveNetNS(filepath.Join(dir, "netns", e.Name()))
		}
	})
	r, err := New(Config{Node: "n1", DataDir: dir, Runtime: f, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	// Before the data dir goes: a replica's worker may still write in it.
	t.Cleanup(r.Close)
	return r
}

func TestSyncTranslatesSpecAndReportsStatus(t *testing.T) {
	f := newFake()
	now := t0
	r := newRec(t, f, &now)
	d := replica("web", 1, "h1", "Always", "main", "side")
	d.Pod.Volumes = []manifest.Volume{{Name: "data", EmptyDir: &manifest.EmptyDirVolumeSource{}}, {Name: "host", HostPath: &manifest.HostPathVolumeSource{Path: filepath.Join(t.TempDir(), "h"), Type: "DirectoryOrCreate"}}}
	c := &d.Pod.Containers[0]
	c.Command, c.Args = []string{"sh"}, []string{"-c", "true"}
	c.Env = []manifest.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "A", Value: "3"}}
	c.Resources.Limits = manifest.ResourceList{"memory": resource.MustParse("64Mi"), "cpu": resource.MustParse("500m")}
	c.Resources.Requests = manifest.ResourceList{"cpu": resource.MustParse("100m")}
	c.VolumeMounts = []manifest.VolumeMount{{Name: "data", MountPath: "/data", SubPath: "sub"}, {Name: "host", MountPath: "/host", ReadOnly: true}}
	grace := int64(7)
	d.Pod.TerminationGracePeriodSeconds = &grace

	st, err := syncWait(t, r, []DesiredReplica{d})
	if err != nil {
		t.Fatal(err)
	}
	if s := st[d.Key()]; s.Phase != manifest.PhaseRunning || !s.Ready {
		t.Fatalf("status %+v", s)
	}
	spec := f.specs[ContainerID(d.Workload, 1, "main", "h1")]
	if !reflect.DeepEqual(spec.Env, []string{"A=3", "B=2"}) || spec.MemoryLimitBytes != 64<<20 || spec.CPUMilli != 500 || spec.CPUSharesMilli != 100 ||
		spec.Hostname != "web-1" || spec.Labels[LabelGrace] != "7" || spec.Labels[LabelReplica] != "1" || spec.Labels[LabelNode] != "n1" {
		t.Fatalf("spec %+v", spec)
	}
	// The volumes, the termination message file, and the replica's own
	// /etc/hosts, hostname and resolv.conf, in destination order.
	var dests []string
	for _, m := range spec.Mounts {
		dests = append(dests, m.Destination)
	}
	if fmt.Sprint(dests) != "[/data /dev/termination-log /etc/hostname /etc/hosts /etc/resolv.conf /host]" ||
		!strings.HasSuffix(spec.Mounts[0].Source, "volumes/data/sub") || !spec.Mounts[5].ReadOnly {
		t.Fatalf("mounts %+v", spec.Mounts)
	}
	if b, err := os.ReadFile(spec.Mounts[1].Source); err != nil || len(b) != 0 {
		t.Fatalf("termination file: %q %v", b, err)
	}
	if b, err := os.ReadFile(spec.Mounts[2].Source); err != nil || string(b) != "web-1\n" {
		t.Fatalf("/etc/hostname: %q %v", b, err)
	}
	if _, err := os.Stat(spec.Mounts[0].Source); err != nil {
		t.Fatalf("emptyDir not created: %v", err)
	}
	// Second pass: nothing to do (fixed point).
	f.calls = nil
	if _, err := syncWait(t, r, []DesiredReplica{d}); err != nil || len(f.calls) != 0 {
		t.Fatalf("second pass acted: %v %v", f.calls, err)
	}
	// Removing the replica removes its containers and its volume dir.
	podDir := filepath.Dir(filepath.Dir(filepath.Dir(spec.Mounts[0].Source)))
	if _, err := syncWait(t, r, nil); err != nil {
		t.Fatal(err)
	}
	if len(f.cs) != 0 {
		t.Fatalf("left: %v", f.cs)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Fatalf("pod dir %s left: %v", podDir, err)
	}
}

func TestSyncCrashLoopAndJobPhases(t *testing.T) {
	f := newFake()
	now := t0
	r := newRec(t, f, &now)
	web := replica("web", 0, "h", "Always", "main")
	job := replica("job", 0, "h", "Never", "main")
	bad := replica("bad", 0, "h", "Never", "main")
	all := []DesiredReplica{web, job, bad}
	if _, err := syncWait(t, r, all); err != nil {
		t.Fatal(err)
	}
	f.exit(ContainerID(web.Workload, 0, "main", "h"), 1, now)
	f.exit(ContainerID(job.Workload, 0, "main", "h"), 0, now)
	f.exit(ContainerID(bad.Workload, 0, "main", "h"), 2, now)
	st, _ := syncWait(t, r, all)
	if st[web.Key()].Reason != "CrashLoopBackOff" || st[job.Key()].Phase != manifest.PhaseSucceeded || st[bad.Key()].Phase != manifest.PhaseFailed {
		t.Fatalf("statuses %+v", st)
	}
	if w := r.NextWake(); !w.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("wake %s", w)
	}
	now = t0.Add(11 * time.Second)
	st, _ = syncWait(t, r, all)
	if st[web.Key()].Phase != manifest.PhaseRunning || st[web.Key()].Restarts != 1 {
		t.Fatalf("after back-off: %+v", st[web.Key()])
	}
}

func TestSyncImageFailureIsolated(t *testing.T) {
	f := newFake()
	f.failImage = func(ref string) error {
		if ref == "missing:1" {
			return fmt.Errorf("%w: missing:1", ErrImageNotFound)
		}
		return nil
	}
	now := t0
	r := newRec(t, f, &now)
	good := replica("good", 0, "h", "Always", "main")
	bad := replica("bad", 0, "h", "Always", "main")
	bad.Pod.Containers[0].Image = "missing:1"
	st, err := syncWait(t, r, []DesiredReplica{good, bad})
	if err != nil {
		t.Fatal(err)
	}
	if st[good.Key()].Phase != manifest.PhaseRunning || st[bad.Key()].Phase != manifest.PhasePending || st[bad.Key()].Reason != "ErrImagePull" {
		t.Fatalf("%+v", st)
	}
	// Not retried before the back-off; then ImagePullBackOff.
	st, _ = syncWait(t, r, []DesiredReplica{good, bad})
	if st[bad.Key()].Reason != "ErrImagePull" || r.NextWake().IsZero() {
		t.Fatalf("%+v wake %s", st[bad.Key()], r.NextWake())
	}
	now = now.Add(11 * time.Second)
	st, _ = syncWait(t, r, []DesiredReplica{good, bad})
	if st[bad.Key()].Reason != "ImagePullBackOff" {
		t.Fatalf("%+v", st[bad.Key()])
	}
	f.failImage = nil
	now = now.Add(time.Minute)
	st, _ = syncWait(t, r, []DesiredReplica{good, bad})
	if st[bad.Key()].Phase != manifest.PhaseRunning {
		t.Fatalf("after the image appears: %+v", st[bad.Key()])
	}
}

func TestSyncCreateFailureReported(t *testing.T) {
	f := newFake()
	f.failCreate = func(string) error { return errors.New("boom") }
	now := t0
	r := newRec(t, f, &now)
	d := replica("x", 0, "h", "Always", "main")
	st, err := syncWait(t, r, []DesiredReplica{d})
	if err != nil || st[d.Key()].Reason != "CreateContainerError" || !strings.Contains(st[d.Key()].Message, "boom") {
		t.Fatalf("%+v %v", st, err)
	}
}

// Properties: Diff never removes a desired container, never creates one
// that runs, and applying its plan reaches a fixed point.
func TestDiffProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var desired []DesiredReplica
		nw := rapid.IntRange(0, 4).Draw(t, "workloads")
		for w := 0; w < nw; w++ {
			n := rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("replicas%d", w))
			hash := rapid.SampledFrom([]string{"a", "b"}).Draw(t, fmt.Sprintf("hash%d", w))
			for i := 0; i < n; i++ {
				desired = append(desired, replica(fmt.Sprintf("w%d", w), i, hash, "Always", "c1", "c2"))
			}
		}
		var actual []Container
		na := rapid.IntRange(0, 6).Draw(t, "actual")
		for i := 0; i < na; i++ {
			d := replica(fmt.Sprintf("w%d", rapid.IntRange(0, 4).Draw(t, "aw")), rapid.IntRange(0, 3).Draw(t, "ai"), rapid.SampledFrom([]string{"a", "b"}).Draw(t, "ah"), "Always", "c1")
			actual = append(actual, ctr(d, "c1", StateRunning, 0, 0, time.Time{}))
		}
		seen := map[string]bool{}
		var dedup []Container
		for _, c := range actual {
			if !seen[c.ID] {
				seen[c.ID] = true
				dedup = append(dedup, c)
			}
		}
		p1, p2 := Diff(desired, dedup, BackoffState{}, t0), Diff(desired, dedup, BackoffState{}, t0)
		if !reflect.DeepEqual(p1, p2) {
			t.Fatal("not deterministic")
		}
		wanted := map[string]bool{}
		for _, d := range desired {
			for _, c := range d.Pod.Containers {
				wanted[ContainerID(d.Workload, d.Index, c.Name, d.SpecHash)] = true
			}
		}
		// Apply the plan in memory.
		state := map[string]Container{}
		for _, c := range dedup {
			state[c.ID] = c
		}
		for _, r := range p1.Remove {
			if wanted[r.ID] {
				t.Fatalf("removes desired %s", r.ID)
			}
			delete(state, r.ID)
		}
		for _, op := range p1.Create {
			for _, c := range op.Containers {
				id := ContainerID(op.Replica.Workload, op.Replica.Index, c, op.Replica.SpecHash)
				if _, ok := state[id]; ok {
					t.Fatalf("creates existing %s", id)
				}
				state[id] = Container{ID: id, State: StateRunning, Labels: map[string]string{}}
			}
		}
		var after []Container
		for _, c := range state {
			after = append(after, c)
		}
		if p := Diff(desired, after, BackoffState{}, t0); !p.Empty() {
			t.Fatalf("no fixed point: %+v", p)
		}
	})
}

func BenchmarkDiff1000(b *testing.B) {
	var desired []DesiredReplica
	var actual []Container
	for i := 0; i < 1000; i++ {
		d := replica(fmt.Sprintf("w%d", i/10), i%10, "h", "Always", "main")
		desired = append(desired, d)
		if i%7 != 0 {
			actual = append(actual, ctr(d, "main", StateRunning, 0, 0, time.Time{}))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Diff(desired, actual, BackoffState{}, t0)
	}
}

func TestDiffInitContainers(t *testing.T) {
	d := replica("web", 0, "h1", "Always", "app")
	d.Pod.InitContainers = []manifest.Container{{Name: "init", Image: "busybox:1"}, {Name: "side", Image: "busybox:1", RestartPolicy: "Always"}}
	id := func(c string) string { return ContainerID(d.Workload, d.Index, c, d.SpecHash) }
	never := d
	never.Pod.RestartPolicy = "Never"
	job := d
	job.Workload.Kind = "Job"
	job.Pod.RestartPolicy = "OnFailure"
	cases := []struct {
		name      string
		d         DesiredReplica
		actual    []Container
		unstarted map[string]bool
		create    []string
		restart   []string
	}{
		{"first init alone", d, nil, nil, []string{"init"}, nil},
		{"init running: wait", d, []Container{ctr(d, "init", StateRunning, 0, 0, time.Time{})}, nil, nil, nil},
		{"init done: sidecar next", d, []Container{ctr(d, "init", StateExited, 0, 0, t0)}, nil, []string{"side"}, nil},
		{"sidecar not started: wait", d, []Container{ctr(d, "init", StateExited, 0, 0, t0), ctr(d, "side", StateRunning, 0, 0, time.Time{})}, map[string]bool{id("side"): true}, nil, nil},
		{"sidecar started: app", d, []Container{ctr(d, "init", StateExited, 0, 0, t0), ctr(d, "side", StateRunning, 0, 0, time.Time{})}, nil, []string{"app"}, nil},
		{"failed init retried after back-off", d, []Container{ctr(d, "init", StateExited, 1, 0, t0.Add(-11*time.Second))}, nil, nil, []string{id("init")}},
		{"failed init under Never: nothing", never, []Container{ctr(never, "init", StateExited, 1, 0, t0.Add(-time.Hour))}, nil, nil, nil},
		{"completed init not restarted under Always", d, []Container{ctr(d, "init", StateExited, 0, 0, t0.Add(-time.Hour)), ctr(d, "side", StateRunning, 0, 0, time.Time{}), ctr(d, "app", StateRunning, 0, 0, time.Time{})}, nil, nil, nil},
		{"job done: sidecar stopped, not restarted", job, []Container{ctr(job, "init", StateExited, 0, 0, t0.Add(-time.Hour)), ctr(job, "side", StateRunning, 0, 0, time.Time{}), ctr(job, "app", StateExited, 0, 0, t0)}, nil, nil, nil},
		{"exited sidecar restarted", d, []Container{ctr(d, "init", StateExited, 0, 0, t0.Add(-time.Hour)), ctr(d, "side", StateExited, 0, 0, t0.Add(-time.Hour)), ctr(d, "app", StateRunning, 0, 0, time.Time{})}, nil, nil, []string{id("side")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := Diff([]DesiredReplica{tc.d}, tc.actual, BackoffState{Unstarted: tc.unstarted}, t0)
			var create []string
			for _, op := range plan.Create {
				create = append(create, op.Containers...)
			}
			if tc.d.Workload.Kind == "Job" && (len(plan.Stop) != 1 || plan.Stop[0].ID != ContainerID(job.Workload, 0, "side", "h1")) {
				t.Fatalf("stop %v, want the sidecar", plan.Stop)
			}
			if strings.Join(create, ",") != strings.Join(tc.create, ",") || strings.Join(plan.Restart, ",") != strings.Join(tc.restart, ",") || len(plan.Remove) != 0 {
				t.Fatalf("create %v restart %v remove %v; want create %v restart %v", create, plan.Restart, plan.Remove, tc.create, tc.restart)
			}
		})
	}
}

// syncWait runs a pass, waits for the work it handed to replica workers,
// and runs a second pass that observes the result, as the agent does
// when Changes fires.
func syncWait(t *testing.T, r *Reconciler, desired []DesiredReplica) (map[ReplicaKey]manifest.ReplicaStatus, error) {
	t.Helper()
	if _, err := r.Sync(context.Background(), desired); err != nil {
		return nil, err
	}
	if err := r.Wait(context.Background()); err != nil {
		return nil, err
	}
	return r.Sync(context.Background(), desired)
}
