package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// clusterRepo is a status branch with every section filled, written as a
// leader writes it (a summary, one body line per change, trailers), with
// commit times rewritten to 3h, 2h, 30m and 10m ago.
type clusterRepo struct {
	url     string
	commits []string // status commits, oldest first
	times   []time.Time
	keyLine string // node-a's signing key
}

var (
	webRef  = manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	piRef   = manifest.Ref{Namespace: "default", Kind: "Job", Name: "pi"}
	tickRef = manifest.Ref{Namespace: "default", Kind: "CronJob", Name: "tick"}
	dbRef   = manifest.Ref{Namespace: "shop", Kind: "StatefulSet", Name: "db"}
	apiRef  = manifest.Ref{Namespace: "shop", Kind: "Deployment", Name: "api"}
)

const (
	desired1 = "1111111111111111111111111111111111111111"
	desired2 = "2222222222222222222222222222222222222222"
)

func newClusterRepo(t *testing.T) *clusterRepo {
	t.Helper()
	ctx := context.Background()
	dir, url := testenv.NewBareRepo(t)
	key, err := status.LoadNodeKey(filepath.Join(t.TempDir(), "node-a"), true)
	if err != nil {
		t.Fatal(err)
	}
	r := &clusterRepo{url: url, keyLine: status.PublicKeyLine(key.PublicKey())}
	st, err := status.Open(ctx, status.Config{URL: url, Dir: filepath.Join(t.TempDir(), "s")})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)
	// write commits as the leader does: the first line as the summary
	// ("(+N more)" when there are others), every line in the body.
	write := func(lines []string, f func(cur *status.State)) {
		t.Helper()
		_, changed, err := st.Update(ctx, func(cur *status.State) (*status.State, *status.Message, error) {
			cur.Cluster.Leader, cur.Cluster.Term = "node-a", 3
			f(cur)
			m := &status.Message{Summary: lines[0], Leader: "node-a", Term: 3, DesiredCommit: cur.Cluster.DesiredCommit}
			if len(lines) > 1 {
				top := 0
				for _, l := range lines[1:] {
					if !strings.HasPrefix(l, "  ") {
						top++
					}
				}
				m.Summary = fmt.Sprintf("%s (+%d more)", lines[0], top)
				m.Body = strings.Join(lines, "\n")
			}
			return cur, m, nil
		})
		if err != nil || !changed {
			t.Fatalf("status write %q: %v %v", lines[0], changed, err)
		}
	}
	write([]string{"node-a leads (term 3)", "node node-a joins", "node node-b joins"}, func(cur *status.State) {
		cur.Nodes["node-a"] = status.NodeStatus{Name: "node-a", State: status.NodeAlive, Labels: map[string]string{"zone": "a", "disk": "ssd"},
			Capacity:  map[string]string{"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"},
			Allocated: map[string]string{"cpu": "750m", "memory": "384Mi"}, SigningKey: r.keyLine,
			Address: "192.168.1.10", PodCIDR: "10.244.0.0/24", DesiredCommitReached: desired1}
		cur.Nodes["node-b"] = status.NodeStatus{Name: "node-b", State: status.NodeDead, Capacity: map[string]string{"cpu": "2"},
			PodCIDRPending: "cluster CIDR full"}
	})
	write([]string{"apply 1111111", "schedule default/web: 2 replica(s) on node-a, node-b"}, func(cur *status.State) {
		cur.Cluster.DesiredCommit = desired1
		cur.Placements[webRef] = manifest.Placement{Workload: webRef, DesiredCommit: desired1, SpecHash: "h-web", Replicas: []manifest.ReplicaPlacement{
			{Index: 0, Node: "node-a", SpecHash: "h-web"}, {Index: 1, Node: "node-b", SpecHash: "h-web"}}}
	})
	write([]string{
		"default/web[0] on node-a: Running",
		"default/web[1] on node-b: Pending (ErrImagePull)",
		"job default/pi: 1 active, 0 succeeded, 0 failed (1 replica(s) on node-a)",
		"  default/pi[0] on node-a: Running",
		"cronjob default/tick: scheduled",
		"schedule shop/db: 1 replica(s), 1 pending",
		"service default/web: 10.96.0.10, 1 endpoint(s)",
		"bind claim default/data to node-a (1Gi, default/data-1a2b)",
	}, func(cur *status.State) {
		since := at.Add(-time.Minute)
		p := cur.Placements[webRef]
		p.Replicas = []manifest.ReplicaPlacement{
			{Index: 0, Node: "node-a", SpecHash: "h-web", ReadySince: &since, Status: &manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true, Restarts: 2, PodIP: "10.244.0.5"}},
			{Index: 1, Node: "node-b", SpecHash: "h-old", DesiredCommit: desired2, Disruption: "PodDisruptionBudget default/web allows no disruption",
				Status: &manifest.ReplicaStatus{Phase: manifest.PhasePending, Reason: "ErrImagePull", Message: "pull busybox:1.99: not found"}},
		}
		p.Rollout = &manifest.RolloutStatus{SpecHash: "h-web", Replicas: 2, Total: 2, Updated: 1, Ready: 1, Available: 1, LastProgress: at, Progressing: "True", Reason: "ReplicaSetUpdated"}
		cur.Placements[webRef] = p
		cur.Placements[piRef] = manifest.Placement{Workload: piRef, DesiredCommit: desired1, SpecHash: "h-pi",
			Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: "node-a", SpecHash: "h-pi", Status: &manifest.ReplicaStatus{Phase: manifest.PhaseRunning}}},
			Job:      &manifest.JobStatus{SpecHash: "h-pi", StartTime: at, Active: 1, NextIndex: 1}}
		last := at.Add(-5 * time.Minute)
		cur.Placements[tickRef] = manifest.Placement{Workload: tickRef, DesiredCommit: desired1, SpecHash: "h-tick",
			CronJob: &manifest.CronJobStatus{Since: at.Add(-time.Hour), LastScheduleTime: &last, Active: []string{"tick-29000000"}, Runs: []string{"tick-28999995", "tick-29000000"}}}
		cur.Placements[dbRef] = manifest.Placement{Workload: dbRef, DesiredCommit: desired1, SpecHash: "h-db",
			Replicas: []manifest.ReplicaPlacement{{Index: 0, SpecHash: "h-db", Pending: []string{"node-a: insufficient memory", "node-b: not alive"}}}}
		cur.Services[manifest.Ref{Namespace: "default", Kind: "Service", Name: "web"}] = services.Record{
			Service: manifest.Ref{Namespace: "default", Kind: "Service", Name: "web"}, Type: "NodePort", ClusterIP: "10.96.0.10",
			Ports:           []services.Port{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "http", NodePort: 30080}},
			SessionAffinity: "ClientIP", AffinitySeconds: 600,
			Endpoints: []services.Endpoint{{IP: "10.244.0.5", Node: "node-a", Replica: "Deployment/web/0", Ready: true, Ports: []int32{8080}},
				{IP: "10.244.1.7", Node: "node-b", Replica: "Deployment/web/1", Ports: []int32{8080}}}}
		cur.Services[manifest.Ref{Namespace: "shop", Kind: "Service", Name: "ext"}] = services.Record{
			Service: manifest.Ref{Namespace: "shop", Kind: "Service", Name: "ext"}, Type: "ExternalName", ExternalName: "db.example.org", Endpoints: []services.Endpoint{}}
		data := volumes.ClaimRef("default", "data")
		cur.Volumes[data] = volumes.Binding{Claim: data, Node: "node-a", Path: "default/data-1a2b", Storage: "1Gi",
			AccessModes: []string{manifest.ReadWriteOnce}, Phase: volumes.Bound, DesiredCommit: desired1, ReclaimPolicy: "Delete", UsedBy: "default/StatefulSet/db"}
	})
	write([]string{
		"reject 2222222: 1 problem(s)",
		"preempt shop/api[0] on node-b: preempted by shop/db[0] (priority 100 > 0)",
		"service shop/bad: no address (clusterIP 10.0.0.1 outside the service range), 0 endpoint(s)",
		"bind claim shop/media to shared storage (10Gi, /mnt/nfs/shop/media)",
		"  web.yaml:10: spec.template.spec.containers[0].imagee: unknown field",
	}, func(cur *status.State) {
		cur.Cluster.Warnings = []string{"secret.yaml:3: Secret default/db stored in plain text"}
		cur.Cluster.LastRejection = &status.Rejection{Commit: desired2, Time: at.Add(time.Minute),
			Errors: []string{"web.yaml:10: spec.template.spec.containers[0].imagee: unknown field"}}
		cur.Placements[apiRef] = manifest.Placement{Workload: apiRef, DesiredCommit: desired1, SpecHash: "h-api",
			Replicas: []manifest.ReplicaPlacement{{Index: 0, SpecHash: "h-api", Pending: []string{"preempted by shop/db[0] (priority 100 > 0) on node-b"}}}}
		bad := manifest.Ref{Namespace: "shop", Kind: "Service", Name: "bad"}
		cur.Services[bad] = services.Record{Service: bad, Type: "ClusterIP", Error: "clusterIP 10.0.0.1 outside the service range", Endpoints: []services.Endpoint{}}
		media := volumes.ClaimRef("shop", "media")
		cur.Volumes[media] = volumes.Binding{Claim: media, Path: "/mnt/nfs/shop/media", Storage: "10Gi", StorageClass: "nfs",
			AccessModes: []string{manifest.ReadWriteMany, manifest.ReadOnlyMany}, Phase: volumes.Bound, DesiredCommit: desired1, ReclaimPolicy: "Retain"}
	})
	now := time.Now().UTC().Truncate(time.Second)
	r.times = []time.Time{now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-30 * time.Minute), now.Add(-10 * time.Minute)}
	r.commits = retime(t, dir, status.DefaultBranch, r.times)
	return r
}

// retime rewrites a branch's commits, oldest first, with the given
// committer times (same trees and messages), as if they had been written
// then; it returns the new hashes.
func retime(t *testing.T, dir, branch string, times []time.Time) []string {
	t.Helper()
	repo, err := gogit.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := plumbing.NewBranchReferenceName(branch)
	ref, err := repo.Reference(name, true)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*object.Commit
	for h := ref.Hash(); !h.IsZero(); {
		c, err := repo.CommitObject(h)
		if err != nil {
			t.Fatal(err)
		}
		chain = append([]*object.Commit{c}, chain...)
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	if len(chain) != len(times) {
		t.Fatalf("%d commits, %d times", len(chain), len(times))
	}
	var parent plumbing.Hash
	var out []string
	for i, c := range chain {
		sig := c.Committer
		sig.When = times[i]
		n := &object.Commit{Author: sig, Committer: sig, Message: c.Message, TreeHash: c.TreeHash}
		if !parent.IsZero() {
			n.ParentHashes = []plumbing.Hash{parent}
		}
		obj := repo.Storer.NewEncodedObject()
		if err := n.Encode(obj); err != nil {
			t.Fatal(err)
		}
		if parent, err = repo.Storer.SetEncodedObject(obj); err != nil {
			t.Fatal(err)
		}
		out = append(out, parent.String())
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(name, parent)); err != nil {
		t.Fatal(err)
	}
	return out
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run %s -update to accept):\n--- got\n%s\n--- want\n%s", name, t.Name(), got, want)
	}
}

// TestStatusGolden pins `driftless status` byte for byte: get shares its
// section printers.
func TestStatusGolden(t *testing.T) {
	r := newClusterRepo(t)
	code, out, errs := runCmd("status", "--repo", r.url)
	if code != 0 {
		t.Fatalf("status: %d %s", code, errs)
	}
	head := r.commits[len(r.commits)-1]
	golden(t, "status.txt", strings.ReplaceAll(out, head, "HEAD"))
	code, out, errs = runCmd("status", "--repo", r.url, "-o", "json")
	if code != 0 {
		t.Fatalf("status json: %d %s", code, errs)
	}
	golden(t, "status.json", strings.NewReplacer(head, "HEAD", r.keyLine, "KEY").Replace(out))
}

// statusSection is the table under a section title of status's output.
func statusSection(t *testing.T, out, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "\n"+title+"\n")
	if !ok {
		t.Fatalf("status has no %s:\n%s", title, out)
	}
	if i := strings.Index(rest, "\n\n"); i >= 0 {
		rest = rest[:i+1]
	}
	return rest
}

// sameJSON compares two JSON values whatever their layout.
func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, b)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	if string(ja) != string(jb) {
		t.Errorf("%s:\n%s\n!=\n%s", what, ja, jb)
	}
}

func TestGet(t *testing.T) {
	r := newClusterRepo(t)
	code, statusText, _ := runCmd("status", "--repo", r.url)
	if code != 0 {
		t.Fatalf("status: %d", code)
	}
	code, statusJSON, _ := runCmd("status", "--repo", r.url, "-o", "json")
	var sj map[string]json.RawMessage
	if code != 0 || json.Unmarshal([]byte(statusJSON), &sj) != nil {
		t.Fatalf("status json: %d %s", code, statusJSON)
	}
	// Text: the section of status, byte for byte; JSON: the records status
	// -o json has for it.
	for _, c := range []struct{ section, title, key string }{
		{"nodes", "NODES", "nodes"},
		{"workloads", "WORKLOADS", "placements"},
		{"replicas", "REPLICAS", ""},
		{"services", "SERVICES", "services"},
		{"volumes", "VOLUMES", "volumes"},
	} {
		code, out, errs := runCmd("get", c.section, "--repo", r.url)
		if want := statusSection(t, statusText, c.title); code != 0 || out != want {
			t.Errorf("get %s: %d %s\n%q\nwant\n%q", c.section, code, errs, out, want)
		}
		code, out, errs = runCmd("get", "--repo", r.url, "-o", "json", c.section)
		if code != 0 {
			t.Fatalf("get %s -o json: %d %s", c.section, code, errs)
		}
		if c.key != "" {
			sameJSON(t, "get "+c.section+" -o json", []byte(out), sj[c.key])
		}
	}

	// Replicas as records: each with its workload, in status's order.
	_, out, _ := runCmd("get", "replicas", "--repo", r.url, "-o", "json")
	var reps []replicaRecord
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 5 {
		t.Fatalf("replicas json: %v %s", err, out)
	}
	if w := reps[1]; w.Workload != webRef || w.Index != 1 || w.Node != "node-b" || w.Status.Reason != "ErrImagePull" || w.DesiredCommit != desired2 {
		t.Errorf("replica 1: %+v", w)
	}
	if d := reps[4]; d.Workload != dbRef || d.Node != "" || len(d.Pending) != 2 {
		t.Errorf("pending replica: %+v", d)
	}
	// YAML: the same records.
	code, out, _ = runCmd("get", "replicas", "--repo", r.url, "-o", "yaml")
	var yreps []replicaRecord
	if err := yaml.Unmarshal([]byte(out), &yreps); code != 0 || err != nil || len(yreps) != 5 || yreps[0].Status.PodIP != "10.244.0.5" || yreps[0].Workload != webRef {
		t.Fatalf("replicas yaml: %d %v\n%s", code, err, out)
	}
	code, out, _ = runCmd("get", "nodes", "--repo", r.url, "-o", "yaml")
	var ynodes map[string]status.NodeStatus
	if err := yaml.Unmarshal([]byte(out), &ynodes); code != 0 || err != nil || ynodes["node-a"].PodCIDR != "10.244.0.0/24" || len(ynodes) != 2 {
		t.Fatalf("nodes yaml: %d %v\n%s", code, err, out)
	}

	// Wide: status's columns, then more.
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.keyLine))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		section string
		want    []string
	}{
		{"nodes", []string{"LABELS           CAPACITY                                  ALLOCATED              SIGNING-KEY\n",
			"cpu=4,ephemeral-storage=100Gi,memory=8Gi  cpu=750m,memory=384Mi  " + ssh.FingerprintSHA256(pub) + "\n"}},
		{"workloads", []string{"COMMIT   NODES          PENDING\n", "default/Deployment/web  h-web   2        2       1        1      1111111  node-a,node-b  0\n",
			"shop/StatefulSet/db     h-db    1        0       0        0      1111111  -              1\n"}},
		{"replicas", []string{"RESTARTS  REASON", "POD    SPEC   COMMIT   READY-SINCE           DISRUPTION\n",
			"ErrImagePull pull busybox:1.99: not found             web-1  h-old  2222222  -                     PodDisruptionBudget default/web allows no disruption\n",
			"web-0  h-web  1111111  2026-11-23T04:59:00Z  -\n"}},
		{"services", []string{"TARGET-PORTS  AFFINITY       REPLICAS\n", "80->http      ClientIP/600s  Deployment/web/0@node-a,Deployment/web/1@node-b\n"}},
		{"volumes", []string{"CLASS  RECLAIM  USED-BY                 COMMIT\n", "nfs    Retain   -                       1111111\n"}},
	} {
		code, out, errs := runCmd("get", c.section, "--repo", r.url, "-o", "wide")
		if code != 0 {
			t.Fatalf("get %s -o wide: %d %s", c.section, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("get %s -o wide lacks %q:\n%s", c.section, w, out)
			}
		}
	}

	// A singular works as kubectl's does.
	if code, out, _ := runCmd("get", "node", "--repo", r.url); code != 0 || !strings.HasPrefix(out, "NAME    STATE") {
		t.Errorf("get node: %d %s", code, out)
	}
	for _, args := range [][]string{{"get", "--repo", r.url}, {"get", "pods", "--repo", r.url}, {"get", "nodes"},
		{"get", "nodes", "--repo", r.url, "-o", "xml"}, {"get", "nodes", "volumes", "--repo", r.url}} {
		if code, _, errs := runCmd(args...); code != 2 || !strings.Contains(errs, "usage: driftless get") {
			t.Errorf("%v: %d %s", args, code, errs)
		}
	}
	if code, _, errs := runCmd("get", "nodes", "--repo", r.url, "--status-branch", "nope"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("missing branch: %d %s", code, errs)
	}
	if code, _, errs := runCmd("get", "-h"); code != 0 || !strings.Contains(errs, "output format: text, wide, json or yaml") {
		t.Errorf("get -h: %d %s", code, errs)
	}
}

// TestGetEmpty: sections with nothing are headers and empty lists, not
// null.
func TestGetEmpty(t *testing.T) {
	_, url := testenv.NewBareRepo(t)
	st, err := status.Open(context.Background(), status.Config{URL: url, Dir: filepath.Join(t.TempDir(), "s")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Update(context.Background(), func(cur *status.State) (*status.State, *status.Message, error) {
		cur.Cluster.Leader, cur.Cluster.Term = "node-a", 1
		return cur, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range getSections {
		code, out, _ := runCmd("get", s, "--repo", url, "-o", "json")
		if code != 0 || (out != "[]\n" && out != "{}\n") {
			t.Errorf("get %s -o json: %d %q", s, code, out)
		}
		if code, out, _ := runCmd("get", s, "--repo", url); code != 0 || strings.Count(out, "\n") != 1 {
			t.Errorf("get %s: %d %q", s, code, out)
		}
	}
}
