package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"driftless.dev/driftless/sources/git"
)

// MaxWebhookBody bounds a webhook request body; hosted Git servers send
// push events well below it.
const MaxWebhookBody = 1 << 20

// WebhookStatus counts webhook calls, as served at /api/v1/status.
type WebhookStatus struct {
	Enabled  bool  `json:"enabled"`
	Accepted int64 `json:"accepted"`
	Invalid  int64 `json:"invalid"`
	// Ignored counts valid calls about another ref than the one followed
	// (a status branch in the same repository, another branch, a tag).
	Ignored      int64     `json:"ignored"`
	LastAccepted time.Time `json:"lastAccepted,omitempty"`
	LastInvalid  time.Time `json:"lastInvalid,omitempty"`
}

// LoadWebhookSecret reads the webhook secret (surrounding white space
// trimmed); an empty secret is an error, as it would accept anyone.
func LoadWebhookSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("webhook secret %s is empty", path)
	}
	return []byte(s), nil
}

// checkWebhook says whether r carries a valid proof of the secret for
// body, and which scheme it used. Schemes: GitHub (X-Hub-Signature-256:
// sha256=<hex HMAC-SHA256 of the body>), Gitea (X-Gitea-Signature: <hex
// HMAC>), GitLab (X-Gitlab-Token: the secret itself) and driftless's own
// (X-Driftless-Signature: sha256=<hex HMAC>). Comparisons are constant
// time. Only the first header present is checked.
func checkWebhook(h http.Header, body, secret []byte) (string, error) {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := mac.Sum(nil)
	hexSig := func(v, prefix string) error {
		if !strings.HasPrefix(v, prefix) {
			return fmt.Errorf("signature does not start with %q", prefix)
		}
		got, err := hex.DecodeString(strings.TrimPrefix(v, prefix))
		if err != nil {
			return errors.New("signature is not hex")
		}
		if !hmac.Equal(got, want) {
			return errors.New("signature does not match")
		}
		return nil
	}
	switch {
	case h.Get("X-Hub-Signature-256") != "":
		return "github", hexSig(h.Get("X-Hub-Signature-256"), "sha256=")
	case h.Get("X-Gitea-Signature") != "":
		return "gitea", hexSig(h.Get("X-Gitea-Signature"), "")
	case h.Get("X-Driftless-Signature") != "":
		return "driftless", hexSig(h.Get("X-Driftless-Signature"), "sha256=")
	case h.Get("X-Gitlab-Token") != "":
		// Hash both sides so that the comparison takes the same time
		// whatever the lengths.
		a, b := sha256.Sum256([]byte(h.Get("X-Gitlab-Token"))), sha256.Sum256(secret)
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return "gitlab", errors.New("token does not match")
		}
		return "gitlab", nil
	}
	return "", errors.New("no signature header (X-Hub-Signature-256, X-Gitea-Signature, X-Gitlab-Token or X-Driftless-Signature)")
}

// serveWebhook handles POST /hooks/git: a valid call makes the loop fetch
// the desired repository now (and hint the other nodes); an invalid one
// gets 401, is counted and logged, and nothing else happens.
func (a *Agent) serveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		a.countWebhook(false)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.log.Warn("webhook refused: body too large", "remote", r.RemoteAddr, "limit", MaxWebhookBody)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	scheme, err := checkWebhook(r.Header, body, a.deps.WebhookSecret)
	if err != nil {
		a.countWebhook(false)
		a.log.Warn("webhook refused", "remote", r.RemoteAddr, "scheme", scheme, "reason", err.Error())
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if ref := pushedRef(body); ref != "" && !a.followsRef(ref) {
		a.mu.Lock()
		a.snap.Webhook.Ignored++
		a.mu.Unlock()
		a.log.Debug("webhook: a push to another ref; ignored", "ref", ref, "scheme", scheme)
		_, _ = fmt.Fprintf(w, "ignored: a push to %s; this agent follows %s\n", ref, a.followedRef())
		return
	}
	a.countWebhook(true)
	a.log.Info("webhook: fetching the desired repository now", "remote", r.RemoteAddr, "scheme", scheme,
		"event", firstNonEmpty(r.Header.Get("X-GitHub-Event"), r.Header.Get("X-Gitea-Event"), r.Header.Get("X-Gitlab-Event")))
	select {
	case a.webhook <- struct{}{}:
	default: // a fetch is already due
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte("fetch scheduled\n"))
}

func (a *Agent) countWebhook(ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now().UTC()
	if ok {
		a.snap.Webhook.Accepted++
		a.snap.Webhook.LastAccepted = now
	} else {
		a.snap.Webhook.Invalid++
		a.snap.Webhook.LastInvalid = now
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// pushedRef is the ref a push event names (GitHub, Gitea and GitLab all
// send "ref": "refs/heads/<branch>"); "" when the body names none (a
// ping, or a call of one's own), which fetches.
func pushedRef(body []byte) string {
	var ev struct {
		Ref string `json:"ref"`
	}
	if json.Unmarshal(body, &ev) != nil {
		return ""
	}
	return ev.Ref
}

// followedRef is the full name of the ref the agent follows.
func (a *Agent) followedRef() string {
	if a.cfg.Ref != "" {
		if strings.HasPrefix(a.cfg.Ref, "refs/") {
			return a.cfg.Ref
		}
		return "refs/tags/" + a.cfg.Ref
	}
	b := a.cfg.Branch
	if b == "" {
		b = git.DefaultBranch
	}
	return "refs/heads/" + b
}

// followsRef reports whether a push to ref may change what the agent
// follows.
func (a *Agent) followsRef(ref string) bool {
	return ref == a.followedRef() || (a.cfg.Ref == "" && ref == a.cfg.Branch)
}
