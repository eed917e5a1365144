package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// FuzzCheckWebhook: any headers and body are accepted only with a
// signature that really is the body's HMAC (or GitLab's token that really
// is the secret); never a panic.
func FuzzCheckWebhook(f *testing.F) {
	secret := []byte("s3cret")
	sign := func(body string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(body))
		return hex.EncodeToString(m.Sum(nil))
	}
	f.Add("X-Hub-Signature-256", "sha256="+sign(`{"ref":"refs/heads/main"}`), []byte(`{"ref":"refs/heads/main"}`))
	f.Add("X-Gitea-Signature", sign("x"), []byte("x"))
	f.Add("X-Gitlab-Token", "s3cret", []byte("{}"))
	f.Add("X-Driftless-Signature", "sha256=zz", []byte(""))
	f.Add("X-Other", "", []byte("body"))
	f.Fuzz(func(t *testing.T, header, value string, body []byte) {
		h := http.Header{}
		h.Set(header, value)
		scheme, err := checkWebhook(h, body, secret)
		if err != nil {
			return
		}
		ok := false
		switch scheme {
		case "github", "driftless":
			// Hex digits in either case decode to the same HMAC.
			ok = strings.EqualFold(value, "sha256="+sign(string(body))) && strings.HasPrefix(value, "sha256=")
		case "gitea":
			ok = strings.EqualFold(value, sign(string(body)))
		case "gitlab":
			ok = value == string(secret)
		}
		if !ok {
			t.Fatalf("accepted %s: %q with body %q", scheme, value, body)
		}
	})
}
