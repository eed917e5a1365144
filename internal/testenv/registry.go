package testenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a private OCI registry (Debian's docker-registry) on
// loopback over plain HTTP, its storage in a temp dir, stopped when the
// test ends.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// User and Password are set when the registry requires them.
	User, Password string
}

// StartRegistry starts a registry; with a user, it requires basic
// authentication (htpasswd with a bcrypt hash) for every request.
func StartRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	Require(t, "docker-registry", "skopeo")
	dir := t.TempDir()
	host := FreePort(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: driftless-test-registry
`, filepath.Join(dir, "data"), host)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: driftless-test\n    path: %s\n", pw)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("docker-registry exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry not answering on %s: %v", host, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Registry{Host: host, User: user, Password: password}
}

// Push copies an OCI archive (as BusyboxArchive builds) to the registry
// as repo:tag (repo without the host: library/busybox:1.0) with skopeo.
func (r *Registry) Push(t testing.TB, archive, repoTag string) {
	t.Helper()
	args := []string{"--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"}
	if r.User != "" {
		args = append(args, "--dest-creds", r.User+":"+r.Password)
	}
	args = append(args, "oci-archive:"+archive, "docker://"+r.Host+"/"+repoTag)
	cmd := exec.Command("skopeo", args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args[:len(args)-2], " "), err, out)
	}
}
