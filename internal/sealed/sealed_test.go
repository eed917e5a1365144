package sealed

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"
)

const plainSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  labels: {app: db}
type: Opaque
data:
  user: YWRtaW4=   # admin
stringData:
  password: planted-value-1
`

func newX25519(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sealedData decodes the data of a sealed manifest (ciphertexts).
func sealedData(t *testing.T, doc []byte) (map[string][]byte, map[string]interface{}) {
	t.Helper()
	var s struct {
		Metadata map[string]interface{} `json:"metadata"`
		Data     map[string][]byte      `json:"data"`
	}
	if err := yaml.Unmarshal(doc, &s); err != nil {
		t.Fatal(err)
	}
	return s.Data, s.Metadata
}

func TestSealOpenRoundTrip(t *testing.T) {
	a, b := newX25519(t), newX25519(t)
	out, err := Seal(strings.NewReader(plainSecret), []age.Recipient{a.Recipient(), b.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("planted-value-1")) || bytes.Contains(out, []byte("YWRtaW4=")) || bytes.Contains(out, []byte("stringData")) {
		t.Fatalf("plaintext left in sealed output:\n%s", out)
	}
	data, meta := sealedData(t, out)
	if meta["name"] != "db" || meta["namespace"] != "shop" {
		t.Fatalf("metadata lost: %v", meta)
	}
	if ann, _ := meta["annotations"].(map[string]interface{}); ann[Annotation] != Scheme {
		t.Fatalf("annotation missing: %v", meta)
	}
	if len(data) != 2 {
		t.Fatalf("want one ciphertext per key, got %d", len(data))
	}
	for k, ct := range data {
		n, err := Recipients(ct)
		if err != nil || n != 2 {
			t.Fatalf("key %s: %d recipients, %v", k, n, err)
		}
	}
	// Either recipient opens it.
	for _, id := range []age.Identity{a, b} {
		got, err := NewKeyring([]age.Identity{id}).Open("shop/db", data)
		if err != nil {
			t.Fatal(err)
		}
		if string(got["user"]) != "admin" || string(got["password"]) != "planted-value-1" {
			t.Fatalf("round trip: %q", got)
		}
	}
	// Sealing again gives other ciphertexts (so the spec hash changes).
	again, err := Seal(strings.NewReader(plainSecret), []age.Recipient{a.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := sealedData(t, again)
	if bytes.Equal(d2["password"], data["password"]) {
		t.Fatal("two seals gave one ciphertext")
	}
}

func TestOpenWrongIdentity(t *testing.T) {
	a, b, other := newX25519(t), newX25519(t), newX25519(t)
	out, err := Seal(strings.NewReader(plainSecret), []age.Recipient{a.Recipient(), b.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := sealedData(t, out)
	_, err = NewKeyring([]age.Identity{other}).Open("shop/db", data)
	if !errors.Is(err, ErrNoMatch) {
		t.Fatalf("want ErrNoMatch, got %v", err)
	}
	if want := "secret shop/db: key password: no identity matches (sealed to 2 recipients)"; err.Error() != want {
		t.Fatalf("message:\n got %s\nwant %s", err, want)
	}
	_, err = (&Keyring{}).Open("shop/db", data)
	if !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), "sealed to 2 recipients") {
		t.Fatalf("no identity: %v", err)
	}
}

func TestOpenTampered(t *testing.T) {
	id := newX25519(t)
	ct, err := Encrypt([]byte("planted-value-2"), []age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	kr := NewKeyring([]age.Identity{id})
	for name, mutate := range map[string]func([]byte) []byte{
		"payload byte": func(b []byte) []byte { b[len(b)-5] ^= 1; return b },
		"header mac":   func(b []byte) []byte { i := bytes.Index(b, []byte("\n--- ")) + 6; b[i] ^= 1; return b },
		"stanza":       func(b []byte) []byte { i := bytes.Index(b, []byte("-> X25519 ")) + 12; b[i] ^= 1; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-8] },
		"not age":      func(b []byte) []byte { return []byte("planted-value-2") },
	} {
		t.Run(name, func(t *testing.T) {
			bad := mutate(append([]byte(nil), ct...))
			got, err := kr.Open("shop/db", map[string][]byte{"password": bad})
			if err == nil {
				t.Fatalf("tampered ciphertext opened: %q", got)
			}
			if strings.Contains(err.Error(), "planted-value-2") {
				t.Fatalf("value in error: %v", err)
			}
		})
	}
}

func TestSSHRecipientAndIdentity(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	x := newX25519(t)
	file := "# cluster recipients\n" + x.Recipient().String() + "\n\n" + string(ssh.MarshalAuthorizedKey(sshPub))
	recs, err := ParseRecipients(strings.NewReader(file))
	if err != nil || len(recs) != 2 {
		t.Fatalf("parse recipients: %d, %v", len(recs), err)
	}
	ct, err := Encrypt([]byte("planted-value-3"), recs)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities(pem.EncodeToMemory(block))
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewKeyring(ids).Open("default/x", map[string][]byte{"k": ct})
	if err != nil || string(got["k"]) != "planted-value-3" {
		t.Fatalf("ssh identity: %q %v", got, err)
	}
	ids, err = ParseIdentities([]byte("# node\n" + x.String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewKeyring(ids).Open("default/x", map[string][]byte{"k": ct}); err != nil {
		t.Fatal(err)
	}
}

func TestHybridRecipient(t *testing.T) {
	pq, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseRecipients(strings.NewReader(pq.Recipient().String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := Encrypt([]byte("planted-value-4"), recs)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities([]byte(pq.String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewKeyring(ids).Open("default/x", map[string][]byte{"k": ct})
	if err != nil || string(got["k"]) != "planted-value-4" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestParseRecipientsErrors(t *testing.T) {
	x := newX25519(t)
	for name, in := range map[string]string{
		"empty":       "# nothing\n\n",
		"private key": x.String() + "\n",
		"garbage":     "hello\n",
		"bad age key": "age1notakey\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRecipients(strings.NewReader(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), x.String()) {
				t.Fatalf("private key echoed: %v", err)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	x := newX25519(t)
	rs := []age.Recipient{x.Recipient()}
	sealedOnce, err := Seal(strings.NewReader(plainSecret), rs)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"configmap":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"already sealed": string(sealedOnce),
		"no data":        "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n",
		"unknown field":  "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nextra: {a: b}\n",
		"empty":          "",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Seal(strings.NewReader(in), rs); err == nil {
				t.Fatal("sealed")
			}
		})
	}
	// Several documents.
	two, err := Seal(strings.NewReader(plainSecret+"---\n"+strings.Replace(plainSecret, "name: db", "name: db2", 1)), rs)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(two), "kind: Secret"); n != 2 {
		t.Fatalf("want 2 sealed documents, got %d:\n%s", n, two)
	}
}

func TestUnseal(t *testing.T) {
	x := newX25519(t)
	out, err := Seal(strings.NewReader(plainSecret), []age.Recipient{x.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Unseal(bytes.NewReader(out), NewKeyring([]age.Identity{x}))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Metadata map[string]interface{} `json:"metadata"`
		Data     map[string][]byte      `json:"data"`
	}
	if err := yaml.Unmarshal(plain, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["password"]) != "planted-value-1" || string(s.Data["user"]) != "admin" || s.Metadata["annotations"] != nil {
		t.Fatalf("unsealed:\n%s", plain)
	}
	if _, err := Unseal(bytes.NewReader(out), NewKeyring([]age.Identity{newX25519(t)})); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("wrong identity: %v", err)
	}
	if _, err := Unseal(strings.NewReader(plainSecret), NewKeyring([]age.Identity{x})); err == nil {
		t.Fatal("unsealed a plain Secret")
	}
}

// BenchmarkOpen is the cost a replica's creation pays per sealed key.
func BenchmarkOpen(b *testing.B) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	ct, err := Encrypt([]byte("a database password of some length"), []age.Recipient{id.Recipient()})
	if err != nil {
		b.Fatal(err)
	}
	kr := NewKeyring([]age.Identity{newX25519Bench(b), id})
	data := map[string][]byte{"password": ct}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := kr.Open("default/db", data); err != nil {
			b.Fatal(err)
		}
	}
}

func newX25519Bench(b *testing.B) *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	return id
}
