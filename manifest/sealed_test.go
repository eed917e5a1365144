package manifest

import (
	"errors"
	"strings"
	"testing"

	"filippo.io/age"

	"driftless.dev/driftless/internal/sealed"
)

const secretUser = `apiVersion: apps/v1
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
          env:
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: password}}
`

const plainDB = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: planted-manifest-value}\n"

func sealDB(t *testing.T, plain string) string {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sealed.Seal(strings.NewReader(plain), []age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestSealedSecretLoads(t *testing.T) {
	s1 := sealDB(t, plainDB)
	a, probs := load(t, "app.yaml", secretUser, "db.yaml", s1)
	if a == nil {
		t.Fatalf("sealed Secret refused: %q", probs)
	}
	if len(a.Warnings) != 0 {
		t.Fatalf("a sealed Secret is not warned about: %v", a.Warnings)
	}
	sec := a.Workloads[0].Secrets["db"]
	if !sec.Sealed || len(sec.Data["password"]) == 0 || strings.Contains(string(sec.Data["password"]), "planted") {
		t.Fatalf("sealed Secret: %+v", sec)
	}
	// A new ciphertext (the same value sealed again) is a new spec hash:
	// the workloads using it roll.
	b, _ := load(t, "app.yaml", secretUser, "db.yaml", sealDB(t, plainDB))
	if b == nil || a.Workloads[0].SpecHash == b.Workloads[0].SpecHash {
		t.Fatal("a changed ciphertext must change the spec hash")
	}
	// A missing key is found without decrypting.
	m, probs := load(t, "app.yaml", strings.Replace(secretUser, "key: password", "key: pasword", 1), "db.yaml", s1)
	if got := warnings(m); probs != nil || len(got) != 1 || !strings.Contains(got[0], `"pasword": no such key in Secret db`) {
		t.Fatalf("missing key: %q %q", probs, got)
	}
}

func TestPlainSecretWarnedOrRequired(t *testing.T) {
	a, _ := load(t, "app.yaml", secretUser, "db.yaml", plainDB)
	if a == nil || len(a.Warnings) != 1 || a.Warnings[0].String() != "db.yaml:1: kind: Secret default/db is stored in plain text in Git (seal it: driftless secret seal)" {
		t.Fatalf("warning: %+v", a)
	}
	files := []File{{Path: "app.yaml", Data: []byte(secretUser)}, {Path: "db.yaml", Data: []byte(plainDB)}}
	_, err := LoadWith(files, LoadOptions{RequireSealedSecrets: true})
	var perrs Errors
	if !errors.As(err, &perrs) || len(perrs) != 1 || !strings.HasPrefix(perrs[0].String(), "db.yaml:1: kind: Secret default/db is stored in plain text in Git") ||
		!strings.Contains(perrs[0].String(), "sealed Secrets are required") {
		t.Fatalf("required: %v", err)
	}
	if strings.Contains(err.Error(), "planted") {
		t.Fatal("value in error")
	}
	files[1].Data = []byte(sealDB(t, plainDB))
	if _, err := LoadWith(files, LoadOptions{RequireSealedSecrets: true}); err != nil {
		t.Fatalf("sealed Secret under the requirement: %v", err)
	}
}

func TestSealedSecretStructure(t *testing.T) {
	good := sealDB(t, plainDB)
	for _, tc := range []struct{ name, doc, want string }{
		{"scheme", strings.Replace(good, "driftless.dev/sealed: age", "driftless.dev/sealed: gpg", 1),
			`metadata.annotations.driftless.dev/sealed: "gpg": unknown sealing scheme (want "age")`},
		{"stringData", good + "stringData:\n  extra: planted-manifest-value\n",
			`stringData.extra: a sealed Secret holds its values as age ciphertexts under data`},
		{"not age", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations: {driftless.dev/sealed: age}\ndata:\n  password: cGxhbnRlZC1tYW5pZmVzdC12YWx1ZQ==\n",
			`db.yaml:7: data.password: not an age ciphertext`},
		{"empty", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations: {driftless.dev/sealed: age}\n",
			`data: a sealed Secret needs at least one sealed value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := load(t, "db.yaml", tc.doc)
			if len(probs) == 0 || !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Fatalf("got %q, want %q", probs, tc.want)
			}
			for _, p := range probs {
				if strings.Contains(p, "planted") {
					t.Fatalf("value in problem %q", p)
				}
			}
		})
	}
}
