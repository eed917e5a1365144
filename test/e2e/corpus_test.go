package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// corpusDir is the Kubernetes website's example manifests (shared test
// data beside the checkout).
func corpusDir(t *testing.T) string {
	dir := os.Getenv("DRIFTLESS_K8S_EXAMPLES")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "testdata", "k8s-examples")
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Kubernetes example corpus not found at %s (set DRIFTLESS_K8S_EXAMPLES): %v", dir, err)
		}
		t.Skipf("Kubernetes example corpus not found at %s", dir)
	}
	return dir
}

var busyboxImage = regexp.MustCompile(`(?m)^(\s+)image: \S*busybox\S*\s*$`)

// Real examples from the Kubernetes documentation run as written, their
// busybox images swapped for the local one: an exec liveness probe, the
// downward API in env (node name, pod name, namespace, pod IP) and a
// Secret volume with a dotfile.
func TestKubernetesExamplesRun(t *testing.T) {
	dir := corpusDir(t)
	e := newEnv(t)
	for _, f := range []string{"pods/probe/exec-liveness.yaml", "pods/inject/dapi-envars-pod.yaml", "secret/dotfile-secret.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		doc := busyboxImage.ReplaceAllString(string(b), "${1}image: busybox:latest\n${1}imagePullPolicy: IfNotPresent")
		if doc == string(b) {
			t.Fatalf("%s: no busybox image to swap", f)
		}
		e.work.WriteFile(filepath.Join("examples", filepath.Base(f)), doc)
	}
	e.work.Commit("kubernetes examples")
	e.work.Push()
	o := e.opts(t, "node-1")
	ag := startAgent(t, o)

	logOf := func(workload, container string) string {
		d := logDirOf(o.dataDir, workload)
		prev, _ := os.ReadFile(filepath.Join(d, container+".previous.log"))
		cur, _ := os.ReadFile(filepath.Join(d, container+".log"))
		return string(prev) + string(cur)
	}
	waitFor(t, "the examples run", 90*time.Second, func() (bool, string) {
		s, err := ag.status()
		if err != nil {
			return false, err.Error()
		}
		phases := map[string]string{}
		ip := ""
		for _, r := range s.Replicas {
			phases[r.Workload.Name] = r.Status.Phase
			if r.Workload.Name == "dapi-envars-fieldref" {
				ip = r.Status.PodIP
			}
		}
		dapi := logOf("dapi-envars-fieldref", "test-container")
		ok := phases["liveness-exec"] == "Running" && ip != "" &&
			strings.Contains(dapi, "node-1") && strings.Contains(dapi, " F dapi-envars-fieldref\n") && strings.Contains(dapi, ip) &&
			// ls -l hides dotfiles, as the example's page says: the
			// listing ran over the mounted volume.
			strings.Contains(logOf("secret-dotfiles-pod", "dotfile-test-container"), "total 0")
		return ok, fmt.Sprintf("phases %v ip %q dapi log %q", phases, ip, tail(dapi, 6))
	})
}

// logDirOf is the log dir of replica 0 of a workload of any kind.
func logDirOf(dataDir, workload string) string {
	ds, _ := filepath.Glob(filepath.Join(dataDir, "logs", "default", "*", workload, "0"))
	if len(ds) == 0 {
		return filepath.Join(dataDir, "logs", "default", "none", workload, "0")
	}
	return ds[0]
}
