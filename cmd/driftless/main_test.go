package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/status"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

const dep = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: busybox:1.36}]
`

func TestValidateExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(good, 0o755)
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(good, "web.yaml"), []byte(dep+"---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec: {}\n"), 0o644)
	os.WriteFile(filepath.Join(bad, "web.yaml"), []byte(strings.Replace(dep, "image:", "imagee:", 1)), 0o644)

	if code, out, _ := runCmd("validate", good); code != 0 || !strings.Contains(out, "skipped:") || !strings.Contains(out, "valid: 1 file(s), 1 workload(s)") {
		t.Fatalf("good: %d %s", code, out)
	}
	code, out, _ := runCmd("validate", bad)
	if code != 1 || !strings.Contains(out, "bad/web.yaml:10: spec.template.spec.containers[0].imagee: unknown field") {
		t.Fatalf("bad: %d %s", code, out)
	}
	code, out, _ = runCmd("validate", "-o", "json", bad)
	var rep validateReport
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Valid || len(rep.Problems) != 1 || rep.Problems[0].Line != 10 {
		t.Fatalf("json: %d %s", code, out)
	}
	if code, _, _ := runCmd("validate"); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	if code, _, _ := runCmd("validate", filepath.Join(dir, "missing")); code != 2 {
		t.Fatalf("missing path: %d", code)
	}
}

func TestPlanAndStatus(t *testing.T) {
	_, url := testenv.NewBareRepo(t)
	w := testenv.NewWorkClone(t, url)
	w.WriteFile("web.yaml", dep)
	w.Commit("web")
	w.Push()

	// No status branch, no nodes: everything pending.
	code, out, errs := runCmd("plan", "--repo", url)
	if code != 0 || !strings.Contains(out, "! default/Deployment/web[0] pending: no nodes") {
		t.Fatalf("plan without nodes: %d %s %s", code, out, errs)
	}
	// A status branch with two alive nodes: replicas spread.
	st, err := status.Open(context.Background(), status.Config{URL: url, Dir: filepath.Join(t.TempDir(), "s")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Update(context.Background(), func(cur *status.State) (*status.State, *status.Message, error) {
		cur.Cluster.Leader, cur.Cluster.Term = "node-a", 1
		cur.Nodes["node-a"] = status.NodeStatus{Name: "node-a", State: "alive",
			Capacity: map[string]string{"cpu": "2", "memory": "4Gi"}, Allocated: map[string]string{"cpu": "500m"}}
		cur.Nodes["node-b"] = status.NodeStatus{Name: "node-b", State: "alive"}
		return cur, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd("plan", "--repo", url)
	if code != 0 || !strings.Contains(out, "2 to add") || !strings.Contains(out, "-> node-a") || !strings.Contains(out, "-> node-b") {
		t.Fatalf("plan: %d %s", code, out)
	}
	// Packing puts both replicas on one node.
	code, out, _ = runCmd("plan", "--repo", url, "--scheduler-policy", "most-allocated")
	if code != 0 || !strings.Contains(out, "2 to add") || strings.Contains(out, "-> node-a") == strings.Contains(out, "-> node-b") {
		t.Fatalf("plan most-allocated: %d %s", code, out)
	}
	if code, _, errs := runCmd("plan", "--repo", url, "--scheduler-policy", "balanced"); code != 2 || !strings.Contains(errs, "least-allocated") {
		t.Fatalf("bad policy: %d %s", code, errs)
	}
	code, out, _ = runCmd("status", "--repo", url)
	if code != 0 || !strings.Contains(out, "node-a (term 1)") || !strings.Contains(out, "node-b  alive  ") ||
		!strings.Contains(out, "cpu=500m/2,memory=0/4Gi") {
		t.Fatalf("status: %d %s", code, out)
	}
	if code, _, errs := runCmd("status", "--repo", url, "--status-branch", "nope"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("missing branch: %d %s", code, errs)
	}
}
