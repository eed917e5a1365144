package reconcile

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// PullCredential is a user name and password for one registry host.
// Never logged.
type PullCredential struct {
	Username, Password string
}

type pullCredsKey struct{}

// WithPullCredentials carries a pod's registry credentials (from its
// imagePullSecrets) to the runtime's pull, by registry host.
func WithPullCredentials(ctx context.Context, creds map[string]PullCredential) context.Context {
	if len(creds) == 0 {
		return ctx
	}
	return context.WithValue(ctx, pullCredsKey{}, creds)
}

// PullCredentialsFrom is what WithPullCredentials put in ctx (nil: none).
func PullCredentialsFrom(ctx context.Context) map[string]PullCredential {
	c, _ := ctx.Value(pullCredsKey{}).(map[string]PullCredential)
	return c
}

// pullCredentials reads the replica's imagePullSecrets (Secrets of type
// kubernetes.io/dockerconfigjson or dockercfg, already opened if sealed)
// into credentials by registry host. A Secret that is missing or does
// not parse gives none: the pull then goes without them, as in
// Kubernetes.
func pullCredentials(d DesiredReplica) map[string]PullCredential {
	out := map[string]PullCredential{}
	for _, ref := range d.Pod.ImagePullSecrets {
		s, ok := d.Secrets[ref.Name]
		if !ok {
			continue
		}
		var auths map[string]dockerAuth
		if b, ok := s.Data[".dockerconfigjson"]; ok {
			var cfg struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			if json.Unmarshal(b, &cfg) == nil {
				auths = cfg.Auths
			}
		} else if b, ok := s.Data[".dockercfg"]; ok {
			_ = json.Unmarshal(b, &auths)
		}
		for server, a := range auths {
			user, pass := a.Username, a.Password
			if a.Auth != "" {
				if b, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					if u, p, ok := strings.Cut(string(b), ":"); ok {
						user, pass = u, p
					}
				}
			}
			if user == "" && pass == "" {
				continue
			}
			host := registryHost(server)
			if _, seen := out[host]; !seen {
				out[host] = PullCredential{Username: user, Password: pass}
			}
		}
	}
	return out
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// registryHost is the host a docker config key names: "https://host/v1/"
// and "host" alike; Docker Hub's legacy URL is docker.io.
func registryHost(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}
