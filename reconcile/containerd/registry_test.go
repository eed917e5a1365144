package containerd

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
)

// Pulls through a real registry (docker-registry on loopback, the busybox
// image pushed with skopeo).

func registryRuntime(t *testing.T, reg *RegistryConfig) *Runtime {
	t.Helper()
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	cd := testenv.StartContainerd(t)
	rt, err := New(context.Background(), Config{Address: cd.Address, Namespace: testNS, Registry: reg, LogWriter: logWriter(t), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// imageNames lists the names containerd holds.
func imageNames(t *testing.T, rt *Runtime) []string {
	t.Helper()
	list, err := rt.Client().ImageService().List(namespaces.WithNamespace(context.Background(), testNS))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, im := range list {
		out = append(out, im.Name)
	}
	return out
}

// An image of an unreachable registry comes from its mirror (after a
// mirror that is down), keeps its own name, and a name pinned by digest is
// pulled and verified the same way; a replica runs from it.
func TestPullThroughMirror(t *testing.T) {
	archive := testenv.BusyboxArchive(t)
	reg := testenv.StartRegistry(t, "", "")
	reg.Push(t, archive, "library/busybox:1.0")
	rt := registryRuntime(t, &RegistryConfig{
		Mirrors:  map[string][]string{"example.test": {"http://127.0.0.1:1", "http://" + reg.Host}},
		Insecure: []string{"127.0.0.1:1", reg.Host},
	})
	ctx := context.Background()
	const name = "example.test/library/busybox:1.0"
	start := time.Now()
	if err := rt.EnsureImage(ctx, name, "IfNotPresent"); err != nil {
		t.Fatalf("pull through mirror: %v", err)
	}
	t.Logf("pulled through the mirror in %s", time.Since(start))
	if got := imageNames(t, rt); len(got) != 1 || got[0] != name {
		t.Fatalf("images %v, want only %s", got, name)
	}
	nctx := namespaces.WithNamespace(ctx, testNS)
	img, err := rt.Client().GetImage(nctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := img.IsUnpacked(nctx, "overlayfs"); err != nil || !ok {
		t.Fatalf("not unpacked: %v %v", ok, err)
	}

	byDigest := "example.test/library/busybox@" + img.Target().Digest.String()
	if err := rt.Client().ImageService().Delete(nctx, name); err != nil {
		t.Fatal(err)
	}
	if err := rt.EnsureImage(ctx, byDigest, "Always"); err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	if got := imageNames(t, rt); len(got) != 1 || got[0] != byDigest {
		t.Fatalf("images %v, want only %s", got, byDigest)
	}
	// A digest the registry does not hold: refused, not replaced by the tag.
	wrong := "example.test/library/busybox@sha256:" + strings.Repeat("1", 64)
	err = rt.EnsureImage(ctx, wrong, "IfNotPresent")
	if !errors.Is(err, reconcile.ErrImageNotFound) || !strings.Contains(err.Error(), "pull failed") {
		t.Fatalf("unknown digest: %v", err)
	}

	// Without the mirror's fallback the registry itself is never asked:
	// only the dead mirror is left, so the pull fails naming it.
	no := false
	rt.cfg.Registry = &RegistryConfig{
		Mirrors:  map[string][]string{"example.test": {"http://127.0.0.1:1"}},
		Fallback: &no,
		Insecure: []string{"127.0.0.1:1"},
	}
	err = rt.EnsureImage(ctx, "example.test/library/busybox:2.0", "IfNotPresent")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("dead mirror without fallback: %v", err)
	}

	// A replica runs from the mirrored image.
	rt.cfg.Registry = &RegistryConfig{
		Mirrors:  map[string][]string{"example.test": {"http://" + reg.Host}},
		Insecure: []string{reg.Host},
	}
	rec := newReconciler(t, rt, t.TempDir())
	c := bb("app", "echo mirrored; sleep 300")
	c.Image = name
	d := pod("mirrored", c)
	syncUntil(t, rec, []reconcile.DesiredReplica{d}, 30*time.Second, "running", func(st manifest.ReplicaStatus) bool {
		return st.Phase == manifest.PhaseRunning
	})
	syncDone(t, rec, nil)
}

// A rewrite rule sends a name to another registry and path; the image is
// recorded under the name the manifest gave.
func TestPullRewritten(t *testing.T) {
	archive := testenv.BusyboxArchive(t)
	reg := testenv.StartRegistry(t, "", "")
	reg.Push(t, archive, "samples/busybox:1.0")
	rt := registryRuntime(t, &RegistryConfig{
		Rewrites: []Rewrite{
			{From: "gcr.io/other/", To: "example.test/nowhere/"},
			{From: "gcr.io/google-samples/", To: reg.Host + "/samples/"},
		},
		Insecure: []string{reg.Host},
	})
	const name = "gcr.io/google-samples/busybox:1.0"
	if err := rt.EnsureImage(context.Background(), name, "Always"); err != nil {
		t.Fatalf("pull rewritten: %v", err)
	}
	if got := imageNames(t, rt); len(got) != 1 || got[0] != name {
		t.Fatalf("images %v, want only %s", got, name)
	}
	// Plain HTTP is for the listed hosts only: the same rule without the
	// registry under insecure reaches it over HTTPS and fails.
	rt.cfg.Registry = &RegistryConfig{Rewrites: []Rewrite{{From: "gcr.io/google-samples/", To: reg.Host + "/samples/"}}}
	err := rt.EnsureImage(context.Background(), "gcr.io/google-samples/busybox:2.0", "IfNotPresent")
	if err == nil || !strings.Contains(err.Error(), "https://"+reg.Host) {
		t.Fatalf("HTTPS to a registry not listed insecure: %v", err)
	}
}

// A registry requiring a password: credentials read from files succeed;
// a wrong password (the file changed between pulls) leaves the replica
// pending with ErrImagePull and a message saying the credentials were
// refused, without the password.
func TestPullWithCredentialFiles(t *testing.T) {
	archive := testenv.BusyboxArchive(t)
	reg := testenv.StartRegistry(t, "puller", "s3cret-pass")
	reg.Push(t, archive, "library/busybox:1.0")
	reg.Push(t, archive, "library/busybox:2.0")
	dir := t.TempDir()
	userFile, passFile := filepath.Join(dir, "user"), filepath.Join(dir, "pass")
	os.WriteFile(userFile, []byte("puller\n"), 0o600)
	os.WriteFile(passFile, []byte("s3cret-pass\n"), 0o600)
	rt := registryRuntime(t, &RegistryConfig{
		Mirrors:     map[string][]string{"example.test": {"http://" + reg.Host}},
		Credentials: map[string]Credential{reg.Host: {UsernameFile: userFile, PasswordFile: passFile}},
		Insecure:    []string{reg.Host},
	})
	rec := newReconciler(t, rt, t.TempDir())
	ok := bb("app", "sleep 300")
	ok.Image = "example.test/library/busybox:1.0"
	good := pod("good", ok)
	syncUntil(t, rec, []reconcile.DesiredReplica{good}, 30*time.Second, "running with credentials", func(st manifest.ReplicaStatus) bool {
		return st.Phase == manifest.PhaseRunning
	})

	if err := os.WriteFile(passFile, []byte("wrong-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := bb("app", "sleep 300")
	bad.Image = "example.test/library/busybox:2.0"
	refused := pod("refused", bad)
	st := syncUntil(t, rec, []reconcile.DesiredReplica{refused, good}, 30*time.Second, "refused", func(st manifest.ReplicaStatus) bool {
		return st.Phase == manifest.PhasePending && st.Reason == "ErrImagePull"
	})
	t.Logf("message: %s", st.Message)
	if !strings.Contains(st.Message, "credentials configured for "+reg.Host+" were not accepted") {
		t.Fatalf("message does not say the credentials were refused: %s", st.Message)
	}
	if strings.Contains(st.Message, "wrong-pass") || strings.Contains(st.Message, "s3cret") {
		t.Fatalf("message holds a password: %s", st.Message)
	}

	// No credentials at all: the message says none are configured.
	rt.cfg.Registry = &RegistryConfig{
		Mirrors:  map[string][]string{"example.test": {"http://" + reg.Host}},
		Insecure: []string{reg.Host},
	}
	err := rt.EnsureImage(context.Background(), "example.test/library/busybox:2.0", "IfNotPresent")
	if !errors.Is(err, reconcile.ErrImageNotFound) || !strings.Contains(err.Error(), "no credentials configured for "+reg.Host) {
		t.Fatalf("without credentials: %v", err)
	}
	syncDone(t, rec, nil)
}

func TestRegistryConfigValidate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "registries.yaml")
	os.WriteFile(p, []byte(`mirrors:
  docker.io: ["http://127.0.0.1:5000", "https://mirror.internal/cache"]
rewrites:
  - from: gcr.io/google-samples/
    to: registry.internal/samples/
credentials:
  registry.internal: {usernameFile: /etc/driftless/reg-user, passwordFile: /etc/driftless/reg-pass}
insecure: ["127.0.0.1:5000"]
`), 0o644)
	c, err := LoadRegistryConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.endpoint(c.Mirrors["docker.io"][1])
	if err != nil || h.Host != "mirror.internal" || h.Path != "/cache/v2" || h.Scheme != "https" {
		t.Fatalf("endpoint %+v %v", h, err)
	}
	if n, err := c.rewrite("gcr.io/google-samples/hello-app:1.0"); err != nil || n != "registry.internal/samples/hello-app:1.0" {
		t.Fatalf("rewrite: %q %v", n, err)
	}
	if n, _ := c.rewrite("docker.io/library/nginx:1"); n != "docker.io/library/nginx:1" {
		t.Fatalf("no rule: %q", n)
	}
	for _, bad := range []struct{ yaml, want string }{
		{`mirrors: {docker.io: ["http://mirror.internal"]}`, "needs it under insecure"},
		{`mirrors: {docker.io: ["ftp://mirror.internal"]}`, "scheme must be http or https"},
		{`mirrors: {docker.io: ["https://u:p@mirror.internal"]}`, "only scheme, host and path"},
		{`rewrites: [{from: gcr.io/}]`, "from and to are both required"},
		{`credentials: {r.internal: {passwordFile: /p}}`, "username or usernameFile is required"},
		{`credentials: {r.internal: {username: u, passwordFile: p}}`, "must be an absolute path"},
		{`insecure: ["a/b"]`, "is not a host"},
		{`mirror: {}`, "unknown field"},
	} {
		os.WriteFile(p, []byte(bad.yaml), 0o644)
		if _, err := LoadRegistryConfig(p); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: got %v, want %q", bad.yaml, err, bad.want)
		}
	}
}

// A pod's imagePullSecrets (a dockerconfigjson Secret of the commit)
// authenticate its pulls; another pod without them is refused.
func TestPullWithImagePullSecret(t *testing.T) {
	archive := testenv.BusyboxArchive(t)
	reg := testenv.StartRegistry(t, "puller", "s3cret-pass")
	reg.Push(t, archive, "library/busybox:3.0")
	rt := registryRuntime(t, &RegistryConfig{
		Mirrors:  map[string][]string{"example.test": {"http://" + reg.Host}},
		Insecure: []string{reg.Host},
	})
	dataDir := t.TempDir()
	t.Cleanup(func() { testenv.UnmountBelow(dataDir) })
	rec := newReconciler(t, rt, dataDir)
	c := bb("app", "sleep 300")
	c.Image = "example.test/library/busybox:3.0"
	auth := base64.StdEncoding.EncodeToString([]byte("puller:s3cret-pass"))
	withSecret := pod("with", c)
	withSecret.Pod.ImagePullSecrets = []manifest.LocalObjectReference{{Name: "regcred"}}
	withSecret.Secrets = map[string]manifest.Secret{"regcred": {Type: "kubernetes.io/dockerconfigjson",
		Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"http://` + reg.Host + `/v2/":{"auth":"` + auth + `"}}}`)}}}
	without := pod("without", c)
	st := syncUntil(t, rec, []reconcile.DesiredReplica{without}, 30*time.Second, "refused without the secret", func(st manifest.ReplicaStatus) bool {
		return st.Phase == manifest.PhasePending && st.Reason == "ErrImagePull"
	})
	if strings.Contains(st.Message, "s3cret") {
		t.Fatalf("message holds a password: %s", st.Message)
	}
	syncUntil(t, rec, []reconcile.DesiredReplica{withSecret}, 30*time.Second, "running with the pod's secret", func(st manifest.ReplicaStatus) bool {
		return st.Phase == manifest.PhaseRunning
	})

	// A secret with a wrong password: the message says whose credentials
	// were refused, never the password.
	bad := base64.StdEncoding.EncodeToString([]byte("puller:wrong-pass"))
	reg.Push(t, archive, "library/busybox:4.0")
	c4 := c
	c4.Image = "example.test/library/busybox:4.0"
	wrong := pod("wrong", c4)
	wrong.Pod.ImagePullSecrets = withSecret.Pod.ImagePullSecrets
	wrong.Secrets = map[string]manifest.Secret{"regcred": {Type: "kubernetes.io/dockerconfigjson",
		Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"` + reg.Host + `":{"auth":"` + bad + `"}}}`)}}}
	st = syncUntil(t, rec, []reconcile.DesiredReplica{wrong, withSecret}, 30*time.Second, "refused with the wrong secret", func(st manifest.ReplicaStatus) bool {
		return st.Phase == manifest.PhasePending && st.Reason == "ErrImagePull"
	})
	if !strings.Contains(st.Message, "imagePullSecrets credentials for "+reg.Host+" were not accepted") || strings.Contains(st.Message, "wrong-pass") {
		t.Fatalf("message: %s", st.Message)
	}
}
