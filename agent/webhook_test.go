package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhook(t *testing.T) {
	const secret = "s3cr3t-hook"
	a := New(Config{Node: "n1"}, nil, Deps{WebhookSecret: []byte(secret)})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	body := `{"ref":"refs/heads/main"}`
	cases := []struct {
		name   string
		header map[string]string
		body   string
		want   int
	}{
		{"github", map[string]string{"X-Hub-Signature-256": "sha256=" + sign(secret, body), "X-GitHub-Event": "push"}, body, 202},
		{"gitea", map[string]string{"X-Gitea-Signature": sign(secret, body)}, body, 202},
		{"gitlab", map[string]string{"X-Gitlab-Token": secret}, body, 202},
		{"driftless", map[string]string{"X-Driftless-Signature": "sha256=" + sign(secret, body)}, body, 202},
		{"no header", nil, body, 401},
		{"github wrong secret", map[string]string{"X-Hub-Signature-256": "sha256=" + sign("other", body)}, body, 401},
		{"github body changed", map[string]string{"X-Hub-Signature-256": "sha256=" + sign(secret, body)}, body + " ", 401},
		{"github no prefix", map[string]string{"X-Hub-Signature-256": sign(secret, body)}, body, 401},
		{"gitea not hex", map[string]string{"X-Gitea-Signature": "zz"}, body, 401},
		{"gitlab wrong token", map[string]string{"X-Gitlab-Token": secret + "x"}, body, 401},
		{"github ping", map[string]string{"X-Hub-Signature-256": "sha256=" + sign(secret, `{"zen":"x"}`), "X-GitHub-Event": "ping"}, `{"zen":"x"}`, 202},
		{"github another branch", map[string]string{"X-Hub-Signature-256": "sha256=" + sign(secret, `{"ref":"refs/heads/driftless/status"}`)}, `{"ref":"refs/heads/driftless/status"}`, 200},
		{"gitlab a tag", map[string]string{"X-Gitlab-Token": secret}, `{"ref":"refs/tags/v1"}`, 200},
		{"too large", map[string]string{"X-Driftless-Signature": "sha256=" + sign(secret, strings.Repeat("x", MaxWebhookBody+1))}, strings.Repeat("x", MaxWebhookBody+1), 413},
	}
	accepted, invalid := 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/hooks/git", strings.NewReader(c.body))
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			// A valid call leaves exactly one pending fetch; an invalid
			// one none.
			select {
			case <-a.webhook:
				if c.want != 202 {
					t.Fatal("an invalid call triggered a fetch")
				}
				accepted++
			default:
				if c.want == 202 {
					t.Fatal("a valid call did not trigger a fetch")
				}
				if c.want != 200 {
					invalid++
				}
			}
		})
	}
	s := a.Snapshot().Webhook
	if !s.Enabled || s.Accepted != int64(accepted) || s.Invalid != int64(invalid) || accepted != 5 || s.Ignored != 2 {
		t.Fatalf("counters %+v, want %d accepted %d invalid", s, accepted, invalid)
	}
	if resp, err := http.Get(srv.URL + "/hooks/git"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}
	off := httptest.NewServer(New(Config{Node: "n1"}, nil, Deps{}).Handler())
	defer off.Close()
	if resp, err := http.Post(off.URL+"/hooks/git", "application/json", strings.NewReader(body)); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("without a secret the endpoint is off: %v %v", resp, err)
	}
}
