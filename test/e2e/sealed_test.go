package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

const sealedValue = "planted-sealed-e2e-value"

// sealedApp uses Secret db as an env var and as a file; it prints a hash
// of what it got, never the value itself.
const sealedApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: vault-user}
spec:
  replicas: 1
  selector: {matchLabels: {app: vault-user}}
  template:
    metadata: {labels: {app: vault-user}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c"]
          args:
            - echo "envsum=$(printf %s "$PASSWORD" | sha256sum | cut -c1-16)";
              echo "filesum=$(sha256sum < /etc/sec/password | cut -c1-16)";
              grep -q ' /etc/sec tmpfs' /proc/mounts && echo "secret-on-tmpfs";
              trap 'exit 0' TERM; sleep 1000 & wait
          env:
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: password}}
          volumeMounts:
            - {name: sec, mountPath: /etc/sec}
      volumes:
        - name: sec
          secret: {secretName: db, defaultMode: 0400}
`

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sealedSetup makes a node identity, a recipients file of two keys (the
// node's and an operator's) and the sealed Secret, with the CLI as an
// operator would.
func sealedSetup(t *testing.T, bin string) (identity, sealedYAML string) {
	t.Helper()
	dir := t.TempDir()
	identity = filepath.Join(dir, "node.agekey")
	var pubs []string
	for _, f := range []string{identity, filepath.Join(dir, "operator.agekey")} {
		out, err := exec.Command(bin, "secret", "keygen", "-o", f).Output()
		if err != nil {
			t.Fatalf("keygen: %v", err)
		}
		pubs = append(pubs, strings.TrimSpace(string(out)))
	}
	recipients := filepath.Join(dir, "recipients.txt")
	if err := os.WriteFile(recipients, []byte("# prod\n"+strings.Join(pubs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	seal := exec.Command(bin, "secret", "seal", "--recipients", recipients)
	seal.Stdin = strings.NewReader("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: " + sealedValue + "\n")
	out, err := seal.Output()
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return identity, string(out)
}

// A sealed Secret reaches the container as an env var and a tmpfs file;
// its value is nowhere else: not in Git (desired or status branch), not in
// the agent's log, not in the data dir outside tmpfs mounts.
func TestSealedSecret(t *testing.T) {
	e := newEnv(t)
	identity, sealedDB := sealedSetup(t, e.bin)
	if strings.Contains(sealedDB, sealedValue) {
		t.Fatal("value in the sealed manifest")
	}
	e.work.WriteFile("app.yaml", sealedApp)
	e.work.WriteFile("db.yaml", sealedDB)
	// A plain Secret beside it is applied, and warned about in status.
	e.work.WriteFile("legacy.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: legacy}\nstringData: {token: not-sealed}\n")
	e.work.Commit("sealed secret")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.extra = []string{"--age-identity", identity}
	ag := startAgent(t, o)

	sum := sha256.Sum256([]byte(sealedValue))
	want := hex.EncodeToString(sum[:])[:16]
	logPath := filepath.Join(o.dataDir, "logs", "default", "deployment", "vault-user", "0", "main.log")
	waitFor(t, "the container sees the value", 60*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(logPath)
		s := string(b)
		return strings.Contains(s, "envsum="+want) && strings.Contains(s, "filesum="+want) && strings.Contains(s, "secret-on-tmpfs"), s
	})
	waitFor(t, "the plain Secret warned about on the status branch", 30*time.Second, func() (bool, string) {
		gitOut(t, e.work.Dir, "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
		out, _ := exec.Command("git", "-C", e.work.Dir, "show", "origin/driftless/status:cluster.yaml").CombinedOutput()
		return strings.Contains(string(out), "legacy.yaml:1: kind: Secret default/legacy is stored in plain text in Git"), string(out)
	})
	waitFor(t, "the replica running in the API", 30*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && len(s.Replicas) == 1 && s.Replicas[0].Status.Phase == "Running", fmt.Sprintf("%+v %v", s, err)
	})
	if out := httpGet(t, "http://"+o.api+"/api/v1/status"); !strings.Contains(out, "Secret default/legacy is stored in plain text") {
		t.Fatalf("no warning in the API: %s", out)
	}

	ag.term()
	if strings.Contains(ag.logs.String(), sealedValue) {
		t.Fatal("secret value in the agent's log")
	}
	// Every commit of every branch, the status branch's included.
	gitOut(t, e.work.Dir, "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
	revs := strings.Fields(gitOut(t, e.work.Dir, "rev-list", "--all"))
	if len(revs) < 3 {
		t.Fatalf("want the desired and several status commits, got %d", len(revs))
	}
	grep := exec.Command("git", append([]string{"-C", e.work.Dir, "grep", "-l", sealedValue}, revs...)...)
	if out, err := grep.CombinedOutput(); err == nil || len(out) > 0 {
		t.Fatalf("secret value in Git: %s", out)
	}
	if out, _ := exec.Command("git", "-C", e.work.Dir, "log", "--all", "--format=%B").CombinedOutput(); strings.Contains(string(out), sealedValue) {
		t.Fatal("secret value in a commit message")
	}
	// The data dir, Git clones included, outside tmpfs.
	found := 0
	_ = filepath.Walk(o.dataDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), sealedValue) {
			if !testenv.OnTmpfs(p) {
				t.Errorf("secret value on disk in %s", p)
			} else {
				found++
			}
		}
		return nil
	})
	if found == 0 {
		t.Error("the tmpfs secret volume was not found in the data dir (the walk cannot have looked)")
	}
}

// A node whose identity is not a recipient keeps the replica Pending with
// the reason and runs the rest; with --require-sealed-secrets a commit
// holding a plain Secret is refused whole.
func TestSealedSecretWrongIdentity(t *testing.T) {
	e := newEnv(t)
	_, sealedDB := sealedSetup(t, e.bin)
	wrong, _ := sealedSetup(t, e.bin) // an identity of another cluster
	e.work.WriteFile("app.yaml", sealedApp)
	e.work.WriteFile("db.yaml", sealedDB)
	e.work.WriteFile("other.yaml", deployment("other", 1, "sleep 1000"))
	e.work.Commit("sealed secret")
	e.work.Push()
	o := e.opts(t, "node-1")
	o.extra = []string{"--age-identity", wrong, "--require-sealed-secrets"}
	ag := startAgent(t, o)

	waitFor(t, "vault-user pending with the reason, other running", 60*time.Second, func() (bool, string) {
		s, err := ag.status()
		if err != nil {
			return false, err.Error()
		}
		ok := 0
		for _, r := range s.Replicas {
			if r.Workload.Name == "vault-user" && r.Status.Phase == "Pending" && r.Status.Reason == "CreateContainerConfigError" {
				ok++
			}
			if r.Workload.Name == "other" && r.Status.Phase == "Running" {
				ok++
			}
		}
		return ok == 2, fmt.Sprintf("%+v", s.Replicas)
	})
	const reason = "secret default/db: key password: no identity matches (sealed to 2 recipients)"
	waitFor(t, "the reason on the status branch", 30*time.Second, func() (bool, string) {
		p, _ := statusFile(t, e.work.Dir, "placements/default/Deployment.vault-user.yaml")
		for _, r := range p.Replicas {
			if r.Status != nil && r.Status.Message == reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Replicas)
	})
	if n := len(listTasks(t, e.client, "vault-user")); n != 0 {
		t.Fatalf("%d containers of vault-user", n)
	}

	// A plain Secret: the commit is refused, naming file and line.
	e.work.WriteFile("plain.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: plain}\nstringData: {k: v}\n")
	bad := e.work.Commit("a plain secret")
	e.work.Push()
	waitFor(t, "the commit refused", 30*time.Second, func() (bool, string) {
		s, err := ag.status()
		if err != nil || s.LastRejection == nil {
			return false, fmt.Sprint(err)
		}
		return s.LastRejection.Commit == bad && len(s.LastRejection.Errors) == 1 &&
			strings.HasPrefix(s.LastRejection.Errors[0], "plain.yaml:1: kind: Secret default/plain is stored in plain text in Git"), fmt.Sprint(s.LastRejection.Errors)
	})
}
