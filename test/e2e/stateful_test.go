package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

// statefulSet is a StatefulSet of busybox replicas, each with a claim of
// its own from a template mounted at /data; every start appends the
// replica's hostname and the template's VERSION to /data/boots, and the
// replica turns ready two seconds after it starts.
func statefulSet(name string, replicas int, version, policy string) string {
	script := `echo "$(hostname) v$VERSION" >> /data/boots; cat /data/boots; sleep 2; touch /tmp/ready; exec sleep 100000`
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: %[1]s
spec:
  serviceName: %[1]s
  replicas: %[2]d
  podManagementPolicy: %[5]s
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
%[3]s          env:
          - {name: VERSION, value: "%[4]s"}
          readinessProbe:
            exec: {command: ["test", "-f", "/tmp/ready"]}
            periodSeconds: 1
          volumeMounts:
          - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  clusterIP: None
  selector: {app: %[1]s}
  ports: [{port: 80}]
`, name, replicas, busyboxContainer("        ", "main", script), version, policy)
}

// replicaView is one replica as an agent's API reports it.
type replicaView struct {
	Workload struct{ Kind, Name string } `json:"workload"`
	Index    int                         `json:"index"`
	Status   struct {
		Phase, Reason, Message string
		Ready                  bool
	} `json:"status"`
}

func replicasOf(api, kind, name string) (map[int]replicaView, error) {
	resp, err := http.Get("http://" + api + "/api/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s struct {
		Replicas []replicaView `json:"replicas"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, err
	}
	out := map[int]replicaView{}
	for _, r := range s.Replicas {
		if r.Workload.Kind == kind && r.Workload.Name == name {
			out[r.Index] = r
		}
	}
	return out, nil
}

// branchState is the status branch of url, empty while it is not
// written yet.
func branchState(url string) *status.State {
	st, err := status.ReadState(context.Background(), url, status.DefaultBranch, git.Auth{})
	if err != nil {
		return (*status.State)(nil).Clone()
	}
	return st
}

// binding reads a claim's binding from the status branch.
func binding(t *testing.T, dir, claim string) (volumes.Binding, bool) {
	t.Helper()
	fetch := exec.Command("git", "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
	fetch.Dir = dir
	if out, err := fetch.CombinedOutput(); err != nil {
		t.Fatalf("git fetch: %v\n%s", err, out)
	}
	show := exec.Command("git", "show", "origin/driftless/status:volumes/default/"+claim+".yaml")
	show.Dir = dir
	out, err := show.Output()
	if err != nil {
		return volumes.Binding{}, false
	}
	var b volumes.Binding
	if err := yaml.Unmarshal(out, &b); err != nil {
		t.Fatalf("%s: %v\n%s", claim, err, out)
	}
	return b, true
}

// boots is the content of a claim's /data/boots on this node.
func boots(t *testing.T, e *env, volumesDir, claim string) string {
	t.Helper()
	b, ok := binding(t, e.work.Dir, claim)
	if !ok {
		return ""
	}
	data, _ := os.ReadFile(filepath.Join(volumesDir, b.Path, "boots"))
	return string(data)
}

// ordinalTasks are the containers of one ordinal of a StatefulSet.
func ordinalTasks(t *testing.T, e *env, name string, ordinal int) []task {
	t.Helper()
	var out []task
	for _, tk := range listTasks(t, e.client, name) {
		if strings.HasPrefix(tk.ID, fmt.Sprintf("%s-%d-", name, ordinal)) {
			out = append(out, tk)
		}
	}
	return out
}

func TestStatefulSetOrderedWithVolumes(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", statefulSet("web", 2, "1", "OrderedReady"))
	e.work.Commit("a StatefulSet of two")
	e.work.Push()

	o := e.opts(t, "node-1")
	volumesDir := filepath.Join(t.TempDir(), "vols")
	o.extra = append(o.extra, "--volumes-dir", volumesDir)
	ag := startAgent(t, o)

	// web-1 is created only once web-0 is Running and Ready.
	ready0 := false
	waitFor(t, "web-0 ready, then web-1 ready", 90*time.Second, func() (bool, string) {
		rs, err := replicasOf(ag.api, "StatefulSet", "web")
		if err != nil {
			return false, err.Error()
		}
		ready0 = ready0 || (rs[0].Status.Ready && rs[0].Status.Phase == "Running")
		r1, has1 := rs[1]
		if has1 && r1.Status.Phase != "" && !ready0 {
			t.Fatalf("web-1 exists (%+v) before web-0 was seen ready: %+v", r1, rs)
		}
		if len(ordinalTasks(t, e, "web", 1)) > 0 && !ready0 {
			t.Fatalf("a container of web-1 runs before web-0 was seen ready: %+v", rs)
		}
		return ready0 && rs[1].Status.Ready, fmt.Sprintf("%+v", rs)
	})
	for _, i := range []int{0, 1} {
		claim := fmt.Sprintf("data-web-%d", i)
		b, ok := binding(t, e.work.Dir, claim)
		if !ok || b.Node != "node-1" || b.Phase != volumes.Bound || b.Storage != "64Mi" {
			t.Fatalf("binding of %s: %+v (found %v)", claim, b, ok)
		}
		if got := boots(t, e, volumesDir, claim); got != fmt.Sprintf("web-%d v1\n", i) {
			t.Fatalf("%s boots = %q, want its hostname once", claim, got)
		}
	}

	// A template change replaces web-1 first, then web-0; each keeps its
	// data.
	e.work.WriteFile("web.yaml", statefulSet("web", 2, "2", "OrderedReady"))
	e.work.Commit("version 2")
	e.work.Push()
	waitFor(t, "both replicas on v2 with their old data", 90*time.Second, func() (bool, string) {
		b0, b1 := boots(t, e, volumesDir, "data-web-0"), boots(t, e, volumesDir, "data-web-1")
		rs, _ := replicasOf(ag.api, "StatefulSet", "web")
		return b0 == "web-0 v1\nweb-0 v2\n" && b1 == "web-1 v1\nweb-1 v2\n" && rs[0].Status.Ready && rs[1].Status.Ready, b0 + "|" + b1
	})

	// An agent killed -9 and back restarts nothing and binds nothing anew.
	before := append(ordinalTasks(t, e, "web", 0), ordinalTasks(t, e, "web", 1)...)
	if running(before) != 2 {
		t.Fatalf("containers of web: %+v", before)
	}
	b1, _ := binding(t, e.work.Dir, "data-web-1")
	ag.kill()
	ag = startAgent(t, o)
	waitFor(t, "the new agent reports both ready", 60*time.Second, func() (bool, string) {
		rs, err := replicasOf(ag.api, "StatefulSet", "web")
		if err != nil {
			return false, err.Error()
		}
		return rs[0].Status.Ready && rs[1].Status.Ready, fmt.Sprintf("%+v", rs)
	})
	assertUnchanged(t, before, append(ordinalTasks(t, e, "web", 0), ordinalTasks(t, e, "web", 1)...))

	// Scale 2 → 1 → 2: web-1 goes, its claim stays bound, and it comes
	// back with its data.
	e.work.WriteFile("web.yaml", statefulSet("web", 1, "2", "OrderedReady"))
	e.work.Commit("scale to 1")
	e.work.Push()
	waitFor(t, "web-1 gone", 60*time.Second, func() (bool, string) {
		return running(ordinalTasks(t, e, "web", 1)) == 0, fmt.Sprint(ordinalTasks(t, e, "web", 1))
	})
	if b, ok := binding(t, e.work.Dir, "data-web-1"); !ok || b.Phase != volumes.Bound || b.Path != b1.Path {
		t.Fatalf("data-web-1 after scale-down: %+v (found %v), was %+v", b, ok, b1)
	}
	e.work.WriteFile("web.yaml", statefulSet("web", 2, "2", "OrderedReady"))
	e.work.Commit("scale to 2")
	e.work.Push()
	waitFor(t, "web-1 back with its data", 60*time.Second, func() (bool, string) {
		b := boots(t, e, volumesDir, "data-web-1")
		rs, _ := replicasOf(ag.api, "StatefulSet", "web")
		p, _ := statusFile(t, e.work.Dir, "placements/default/StatefulSet.web.yaml")
		return b == "web-1 v1\nweb-1 v2\nweb-1 v2\n", fmt.Sprintf("%q %+v %+v", b, rs, p.Replicas)
	})
	logs, _ := filepath.Glob(filepath.Join(o.dataDir, "logs", "default", "statefulset", "web", "1", "main*.log"))
	if len(logs) == 0 {
		t.Fatalf("no log of web-1 under %s", o.dataDir)
	}

	// Its data gone while it is away (a volumes disk not mounted): web-1
	// stays Pending with the reason, and no empty directory replaces it.
	e.work.WriteFile("web.yaml", statefulSet("web", 1, "2", "OrderedReady"))
	e.work.Commit("scale to 1 again")
	e.work.Push()
	waitFor(t, "web-1 gone again", 60*time.Second, func() (bool, string) {
		return running(ordinalTasks(t, e, "web", 1)) == 0, ""
	})
	if err := os.RemoveAll(filepath.Join(volumesDir, b1.Path)); err != nil {
		t.Fatal(err)
	}
	e.work.WriteFile("web.yaml", statefulSet("web", 2, "2", "OrderedReady"))
	e.work.Commit("scale to 2 again")
	e.work.Push()
	waitFor(t, "web-1 Pending: its data is missing", 60*time.Second, func() (bool, string) {
		rs, _ := replicasOf(ag.api, "StatefulSet", "web")
		r := rs[1]
		return r.Status.Phase == "Pending" && r.Status.Reason == "FailedMount" && strings.Contains(r.Status.Message, "data is missing"), fmt.Sprintf("%+v", r)
	})
	if _, err := os.Stat(filepath.Join(volumesDir, b1.Path)); err == nil {
		t.Fatalf("the missing volume directory was re-created")
	}
	if running(ordinalTasks(t, e, "web", 1)) != 0 {
		t.Fatalf("web-1 runs without its data")
	}
}

func TestDeploymentClaimKeepsData(t *testing.T) {
	e := newEnv(t)
	app := func(v string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: uploads}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: cache
  annotations: {driftless.dev/reclaim-policy: Delete}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: files}
spec:
  replicas: 1
  selector: {matchLabels: {app: files}}
  template:
    metadata: {labels: {app: files}}
    spec:
      terminationGracePeriodSeconds: 1
      volumes:
      - name: up
        persistentVolumeClaim: {claimName: uploads}
      - name: cache
        persistentVolumeClaim: {claimName: cache}
      containers:
%s        volumeMounts: [{name: up, mountPath: /srv}, {name: cache, mountPath: /cache}]
`, busyboxContainer("      ", "main", "echo v"+v+" >> /srv/log; echo v"+v+" > /cache/c; exec sleep 100000"))
	}
	e.work.WriteFile("files.yaml", app("1"))
	e.work.Commit("a Deployment with a claim")
	e.work.Push()
	o := e.opts(t, "node-1")
	startAgent(t, o)
	volumesDir := filepath.Join(o.dataDir, "volumes")
	read := func() string {
		b, ok := binding(t, e.work.Dir, "uploads")
		if !ok {
			return ""
		}
		data, _ := os.ReadFile(filepath.Join(volumesDir, b.Path, "log"))
		return string(data)
	}
	waitFor(t, "v1 in the claim", 60*time.Second, func() (bool, string) { s := read(); return s == "v1\n", s })
	e.work.WriteFile("files.yaml", app("2"))
	e.work.Commit("v2")
	e.work.Push()
	waitFor(t, "v2 beside v1", 60*time.Second, func() (bool, string) { s := read(); return s == "v1\nv2\n", s })

	cache, _ := binding(t, e.work.Dir, "cache")
	cacheDir := filepath.Join(volumesDir, cache.Path)
	if b, err := os.ReadFile(filepath.Join(cacheDir, "c")); err != nil || string(b) != "v2\n" {
		t.Fatalf("cache claim: %q %v", b, err)
	}

	// The claims removed from Git: uploads released with its data kept,
	// cache (reclaim policy Delete) deleted once its replica is gone.
	e.work.Remove("files.yaml")
	e.work.Commit("remove the app")
	e.work.Push()
	waitFor(t, "uploads released, cache deleted", 60*time.Second, func() (bool, string) {
		b, _ := binding(t, e.work.Dir, "uploads")
		c, _ := binding(t, e.work.Dir, "cache")
		_, err := os.Stat(cacheDir)
		return b.Phase == volumes.Released && c.Phase == volumes.Deleting && os.IsNotExist(err), fmt.Sprintf("%+v %+v %v", b, c, err)
	})
	if s := read(); s != "v1\nv2\n" {
		t.Fatalf("data of the released claim: %q", s)
	}
}

// With --volume-size-limit loop a claim holds its size and no more: a
// replica writing past it gets "No space left on device"; what it wrote
// within stays across a restart of the agent.
func TestClaimSizeEnforced(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("fill.yaml", `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: small}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 8Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: fill}
spec:
  replicas: 1
  selector: {matchLabels: {app: fill}}
  template:
    metadata: {labels: {app: fill}}
    spec:
      terminationGracePeriodSeconds: 1
      volumes: [{name: d, persistentVolumeClaim: {claimName: small}}]
      containers:
`+busyboxContainer("      ", "main", "echo within > /data/within; dd if=/dev/zero of=/data/big bs=1M count=16 2>&1; exec sleep 100000")+`        volumeMounts: [{name: d, mountPath: /data}]
`)
	e.work.Commit("a replica that writes past its claim")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.extra = []string{"--volume-size-limit", "loop"}
	ag := startAgent(t, o)
	logOf := func() string {
		files, _ := filepath.Glob(filepath.Join(o.dataDir, "logs", "default", "deployment", "fill", "*", "main.log"))
		var b strings.Builder
		for _, f := range files {
			data, _ := os.ReadFile(f)
			b.Write(data)
		}
		return b.String()
	}
	waitFor(t, "the write past the claim's size refused", 60*time.Second, func() (bool, string) {
		return strings.Contains(logOf(), "No space left on device"), logOf()
	})
	ag.kill()
	// The restarted agent finds the claim's file system mounted (or
	// mounts it again) with what was written within its size.
	ag = startAgent(t, o)
	defer ag.kill()
	waitFor(t, "the claim's data there after the restart", 30*time.Second, func() (bool, string) {
		var found string
		_ = filepath.WalkDir(filepath.Join(o.dataDir, "volumes"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "within" {
				b, _ := os.ReadFile(p)
				found = strings.TrimSpace(string(b))
			}
			return nil
		})
		return found == "within", found
	})
}
