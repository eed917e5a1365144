package reconcile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

// A projected volume holds the files of each source in one directory: a
// later source's file of the same path wins; items pick and rename keys;
// a token source writes nothing.
func TestProjectedVolumeFiles(t *testing.T) {
	now := time.Now()
	r := newRec(t, &fake{}, &now)
	d := DesiredReplica{
		Workload: manifest.Ref{Namespace: "shop", Kind: "Deployment", Name: "web"}, Index: 0,
		Labels:     map[string]string{"app": "web"},
		ConfigMaps: map[string]manifest.ConfigMap{"cfg": {Data: map[string]string{"app.conf": "a=1", "shared": "from cm"}}},
		Secrets:    map[string]manifest.Secret{"creds": {Data: map[string][]byte{"password": []byte("s3"), "shared": []byte("from secret")}}},
	}
	v := &manifest.ProjectedVolumeSource{Sources: []manifest.VolumeProjection{
		{ConfigMap: &manifest.ConfigMapProjection{Name: "cfg"}},
		{Secret: &manifest.SecretProjection{Name: "creds", Items: []manifest.KeyToPath{{Key: "password", Path: "db/pass"}, {Key: "shared", Path: "shared"}}}},
		{DownwardAPI: &manifest.DownwardAPIProjection{Items: []manifest.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &manifest.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}},
		{ServiceAccountToken: &manifest.ServiceAccountTokenProjection{Path: "token"}},
	}}
	d.Pod.Volumes = []manifest.Volume{{Name: "all", Projected: v}}
	files, secret, err := r.projectedVolumeFiles(d, v)
	if err != nil || !secret {
		t.Fatalf("files %v secret %v err %v", files, secret, err)
	}
	dir := t.TempDir()
	if err := writeFiles(dir, files, 0); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"app.conf": "a=1", "db/pass": "s3", "shared": "from secret", "labels": "app=\"web\""} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", p, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "token")); err == nil {
		t.Error("a token file was written")
	}
	// A missing ConfigMap that is not optional is the replica's error.
	d.ConfigMaps = nil
	if _, _, err := r.projectedVolumeFiles(d, v); err == nil {
		t.Error("no error for a missing ConfigMap")
	}
}
