package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const appUsingSecret = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: main
          image: busybox:1.36
          envFrom: [{secretRef: {name: db}}]
`

const plainDBSecret = `apiVersion: v1
kind: Secret
metadata: {name: db}
stringData:
  password: planted-cli-value
`

func TestSecretSealValidateUnseal(t *testing.T) {
	dir := t.TempDir()
	id := filepath.Join(dir, "node.agekey")
	code, pub, errOut := runCmd("secret", "keygen", "-o", id)
	if code != 0 || !strings.HasPrefix(pub, "age1") {
		t.Fatalf("keygen: %d %q %s", code, pub, errOut)
	}
	if fi, err := os.Stat(id); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	recipients := filepath.Join(dir, "recipients.txt")
	os.WriteFile(recipients, []byte("# the cluster\n"+pub), 0o644)

	repo := filepath.Join(dir, "repo")
	os.MkdirAll(repo, 0o755)
	os.WriteFile(filepath.Join(repo, "app.yaml"), []byte(appUsingSecret), 0o644)
	plain := filepath.Join(dir, "db.plain.yaml")
	os.WriteFile(plain, []byte(plainDBSecret), 0o600)
	os.WriteFile(filepath.Join(repo, "db.yaml"), []byte(plainDBSecret), 0o644)

	// A plain Secret is a warning (exit 0), or a problem when required.
	code, out, _ := runCmd("validate", repo)
	if code != 0 || !strings.Contains(out, "warning: "+repo+"/db.yaml:1: kind: Secret default/db is stored in plain text in Git") {
		t.Fatalf("plain: %d %s", code, out)
	}
	code, out, _ = runCmd("validate", "--require-sealed-secrets", repo)
	if code != 1 || !strings.Contains(out, repo+"/db.yaml:1: kind: Secret default/db is stored in plain text in Git") || !strings.Contains(out, "invalid: 1 problem(s)") {
		t.Fatalf("required: %d %s", code, out)
	}

	// Sealed, it passes either way and holds no plaintext.
	sealedPath := filepath.Join(repo, "db.yaml")
	if code, _, errOut := runCmd("secret", "seal", "--recipients", recipients, "-o", sealedPath, plain); code != 0 {
		t.Fatalf("seal: %d %s", code, errOut)
	}
	b, _ := os.ReadFile(sealedPath)
	if strings.Contains(string(b), "planted-cli-value") || !strings.Contains(string(b), "driftless.dev/sealed: age") {
		t.Fatalf("sealed file:\n%s", b)
	}
	for _, args := range [][]string{{"validate", repo}, {"validate", "--require-sealed-secrets", repo}} {
		code, out, _ := runCmd(args...)
		if code != 0 || strings.Contains(out, "warning") {
			t.Fatalf("%v: %d %s", args, code, out)
		}
	}
	code, out, errOut = runCmd("secret", "unseal", "--identity", id, sealedPath)
	if code != 0 || !strings.Contains(out, "password: cGxhbnRlZC1jbGktdmFsdWU=") { // base64 of the value
		t.Fatalf("unseal: %d %s %s", code, out, errOut)
	}

	// Usage errors.
	for _, args := range [][]string{{"secret"}, {"secret", "seal"}, {"secret", "unseal"}, {"secret", "keygen"}, {"secret", "nope"}} {
		if code, _, _ := runCmd(args...); code != 2 {
			t.Fatalf("%v: exit %d", args, code)
		}
	}
	// A private key given as recipients is refused without echoing it.
	code, _, errOut = runCmd("secret", "seal", "--recipients", id, plain)
	if code != 1 || strings.Contains(errOut, "AGE-SECRET-KEY") {
		t.Fatalf("identity as recipients: %d %s", code, errOut)
	}
}
