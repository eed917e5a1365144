package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

const claims = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: nfs}
provisioner: driftless.dev/host-path
parameters: {path: /mnt/nfs}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: media, namespace: shop}
spec:
  storageClassName: nfs
  accessModes: [ReadWriteMany, ReadOnlyMany]
  resources: {requests: {storage: 10Gi}}
`

func TestValidateClaims(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "claims.yaml"), []byte(claims), 0o644)
	code, out, errs := runCmd("validate", dir)
	if code != 0 || !strings.Contains(out, "claim default/data 1Gi RWO class=-\n") ||
		!strings.Contains(out, "claim shop/media 10Gi RWX,ROX class=nfs\n") || !strings.Contains(out, "valid: 1 file(s), 0 workload(s)") {
		t.Fatalf("text: %d %s %s", code, out, errs)
	}
	code, out, _ = runCmd("validate", "-o", "json", dir)
	var rep validateReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.Valid || len(rep.Claims) != 2 {
		t.Fatalf("json: %d %s", code, out)
	}
	if c := rep.Claims[0]; c.Namespace != "default" || c.Name != "data" || c.Storage != "1Gi" || strings.Join(c.AccessModes, ",") != "ReadWriteOnce" || c.StorageClass != "" || c.SharedPath != "" {
		t.Fatalf("json claim 0: %+v", c)
	}
	if c := rep.Claims[1]; c.Namespace != "shop" || c.Name != "media" || c.Storage != "10Gi" || c.StorageClass != "nfs" || c.SharedPath != "/mnt/nfs" {
		t.Fatalf("json claim 1: %+v", c)
	}
	if !strings.Contains(out, `"storageClass": ""`) || strings.Count(out, `"sharedPath"`) != 1 {
		t.Fatalf("json fields: %s", out)
	}
	// A commit without claims has an empty list, not null.
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "web.yaml"), []byte(dep), 0o644)
	if code, out, _ := runCmd("validate", "-o", "json", empty); code != 0 || !strings.Contains(out, `"claims": []`) {
		t.Fatalf("json without claims: %d %s", code, out)
	}
	if code, out, _ := runCmd("validate", empty); code != 0 || strings.Contains(out, "claim ") {
		t.Fatalf("text without claims: %d %s", code, out)
	}
}

func TestStatusVolumes(t *testing.T) {
	_, url := testenv.NewBareRepo(t)
	st, err := status.Open(context.Background(), status.Config{URL: url, Dir: filepath.Join(t.TempDir(), "s")})
	if err != nil {
		t.Fatal(err)
	}
	web := manifest.Ref{Namespace: "default", Kind: "StatefulSet", Name: "web"}
	if _, _, err := st.Update(context.Background(), func(cur *status.State) (*status.State, *status.Message, error) {
		cur.Cluster.Leader, cur.Cluster.Term = "node-a", 1
		cur.Nodes["node-a"] = status.NodeStatus{Name: "node-a", State: "alive"}
		cur.Placements[web] = manifest.Placement{Workload: web, SpecHash: "h", Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: "node-a", SpecHash: "h"}}}
		return cur, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	// No bindings: no section.
	code, out, _ := runCmd("status", "--repo", url)
	if code != 0 || strings.Contains(out, "VOLUMES") {
		t.Fatalf("status without volumes: %d %s", code, out)
	}
	if _, _, err := st.Update(context.Background(), func(cur *status.State) (*status.State, *status.Message, error) {
		data := volumes.ClaimRef("default", "data-web-0")
		cur.Volumes[data] = volumes.Binding{Claim: data, Node: "node-a", Path: "default/data-web-0-1a2b", Storage: "1Gi",
			AccessModes: []string{manifest.ReadWriteOnce}, Phase: volumes.Bound, DesiredCommit: "c1"}
		media := volumes.ClaimRef("shop", "media")
		cur.Volumes[media] = volumes.Binding{Claim: media, Path: "/mnt/nfs/shop/media", Storage: "10Gi",
			AccessModes: []string{manifest.ReadWriteMany, manifest.ReadOnlyMany, manifest.ReadWriteOncePod}, StorageClass: "nfs", Phase: volumes.Released, DesiredCommit: "c1"}
		return cur, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd("status", "--repo", url)
	if code != 0 || !strings.Contains(out, "\nVOLUMES\nCLAIM               PHASE     NODE    SIZE  MODES         PATH\n") ||
		!strings.Contains(out, "\ndefault/data-web-0  Bound     node-a  1Gi   RWO           default/data-web-0-1a2b\n") ||
		!strings.Contains(out, "\nshop/media          Released  shared  10Gi  RWX,ROX,RWOP  /mnt/nfs/shop/media\n") {
		t.Fatalf("status: %d %s", code, out)
	}
	// VOLUMES, printed after SERVICES, precedes REPLICAS.
	if strings.Index(out, "\nVOLUMES") > strings.Index(out, "\nREPLICAS") {
		t.Fatalf("section order: %s", out)
	}
	// A StatefulSet's replica row shows its index, the ordinal.
	if !strings.Contains(out, "\ndefault/StatefulSet/web  0        node-a") {
		t.Fatalf("stateful replica row: %s", out)
	}
	code, out, _ = runCmd("status", "--repo", url, "-o", "json")
	var js struct {
		Volumes []volumes.Binding `json:"volumes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js.Volumes) != 2 || js.Volumes[0].Claim.Name != "data-web-0" || js.Volumes[1].Node != "" {
		t.Fatalf("status json: %d %s", code, out)
	}
}
