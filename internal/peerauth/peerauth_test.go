package peerauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	a, other := signer(t), signer(t)
	keys := map[string]ssh.PublicKey{"a": a.PublicKey(), "b": other.PublicKey()}
	keyOf := func(n string) (ssh.PublicKey, bool) { k, ok := keys[n]; return k, ok }
	now := time.Unix(1_800_000_000, 0)
	req := func() *http.Request {
		r, _ := http.NewRequest("GET", "http://n:7481/peer/v1/logs?workload=default/Deployment/web&replica=0", nil)
		return r
	}

	r := req()
	if err := Sign(r, "a", a, now); err != nil {
		t.Fatal(err)
	}
	replays := NewReplays(100)
	if node, err := Verify(r, keyOf, now.Add(time.Second), replays); err != nil || node != "a" {
		t.Fatalf("good signature: %q %v", node, err)
	}
	if _, err := Verify(r, keyOf, now.Add(time.Second), replays); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replay: %v", err)
	}

	cases := map[string]func(r *http.Request){
		"does not verify": func(r *http.Request) { r.URL.RawQuery = "workload=default/Deployment/db&replica=0" },
		"published no": func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), " a ", " c ", 1))
		},
		"off this node's": func(r *http.Request) {},
	}
	for want, mutate := range cases {
		r := req()
		at := now
		if want == "off this node's" {
			at = now.Add(-3 * time.Minute)
		}
		if err := Sign(r, "a", a, at); err != nil {
			t.Fatal(err)
		}
		mutate(r)
		if _, err := Verify(r, keyOf, now, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	// Signed by a, claiming to be b.
	r = req()
	if err := Sign(r, "a", a, now); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), " a ", " b ", 1))
	if _, err := Verify(r, keyOf, now, nil); err == nil {
		t.Fatal("a's signature accepted as b's")
	}
	r = req()
	r.Header.Set("Authorization", "Bearer x")
	if _, err := Verify(r, keyOf, now, nil); err != ErrUnsigned {
		t.Fatalf("bearer: %v", err)
	}
}

func TestTokens(t *testing.T) {
	var tk Tokens
	if tk.Check("x") || tk.Len() != 0 {
		t.Fatal("empty tokens accept")
	}
	tk.Set([]string{"one", "two"})
	if !tk.Check("two") || tk.Check("three") || tk.Len() != 2 {
		t.Fatal("tokens")
	}
	tk.Set([]string{"three"})
	if tk.Check("one") || !tk.Check("three") {
		t.Fatal("rotated tokens")
	}
}

// Nonces are kept only while their call's time is within MaxSkew: a
// node that serves many calls over time never runs out of room (it did,
// and then refused every call as a replay). A store that is full says
// so, and a replay within the window is still refused.
func TestReplaysExpireBySignedTime(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	a, _ := ssh.NewSignerFromKey(priv)
	keyOf := func(string) (ssh.PublicKey, bool) { return a.PublicKey(), true }
	replays := NewReplays(200)
	start := time.Unix(1_800_000_000, 0)
	call := func(at, now time.Time) (*http.Request, error) {
		r, _ := http.NewRequest("POST", "http://n:7481/peer/v1/git/status/git-upload-pack", nil)
		if err := Sign(r, "a", a, at); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(r, keyOf, now, replays)
		return r, err
	}
	// A call a second for 10 minutes: three times the room (but fewer
	// than the room within MaxSkew).
	for i := 0; i < 6000; i++ {
		now := start.Add(time.Duration(i) * 100 * time.Millisecond)
		if i%10 == 0 {
			if _, err := call(now, now); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	}
	now := start.Add(10 * time.Minute)
	r, err := call(now, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(r, keyOf, now.Add(time.Second), replays); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("a replay within the window: %v", err)
	}
	// Many calls in one second fill it: the next is refused as such.
	for i := 0; i < 300; i++ {
		if _, err := call(now, now); err != nil {
			if !strings.Contains(err.Error(), "more signed calls") {
				t.Fatalf("a full store: %v", err)
			}
			return
		}
	}
	t.Fatal("a full store took more calls")
}
