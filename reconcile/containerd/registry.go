package containerd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/reconcile"
)

// RegistryConfig is the agent's registry configuration (--registry-config),
// never read from the repository the agent guards.
type RegistryConfig struct {
	// Mirrors lists, per registry host (docker.io, example.test:5000),
	// endpoints tried in order before the registry itself: URLs such as
	// https://mirror.internal or http://127.0.0.1:5000 (plain HTTP only
	// for hosts in Insecure), optionally with a path prefix.
	Mirrors map[string][]string `json:"mirrors,omitempty"`
	// Fallback: after the mirrors, the registry named in the image is
	// tried too (default true). False keeps pulls on the mirrors.
	Fallback *bool `json:"fallback,omitempty"`
	// Rewrites change the prefix of an image name before it is pulled;
	// the first rule whose From prefixes the normalized name applies.
	// The image keeps its original name in containerd.
	Rewrites []Rewrite `json:"rewrites,omitempty"`
	// Credentials per registry host (a mirror's host or a registry's),
	// read from files at each pull.
	Credentials map[string]Credential `json:"credentials,omitempty"`
	// Insecure lists the hosts (host or host:port) reached over plain
	// HTTP; every other host is reached over HTTPS.
	Insecure []string `json:"insecure,omitempty"`
}

// Rewrite replaces the prefix From of a normalized image name with To.
type Rewrite struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Credential names the files holding a registry's user name and password
// (trailing newlines are dropped). Username may be given inline instead
// of UsernameFile.
type Credential struct {
	Username     string `json:"username,omitempty"`
	UsernameFile string `json:"usernameFile,omitempty"`
	PasswordFile string `json:"passwordFile"`
}

// LoadRegistryConfig reads and validates a registry configuration file
// (YAML, strict: an unknown key is an error).
func LoadRegistryConfig(path string) (*RegistryConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry config: %w", err)
	}
	var c RegistryConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("registry config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("registry config %s: %w", path, err)
	}
	return &c, nil
}

// Validate checks the configuration: mirror URLs, rewrite rules,
// credential files named by absolute paths.
func (c *RegistryConfig) Validate() error {
	var errs []error
	for host, mirrors := range c.Mirrors {
		if host == "" || strings.ContainsAny(host, "/ ") {
			errs = append(errs, fmt.Errorf("mirrors: %q is not a registry host", host))
		}
		if len(mirrors) == 0 {
			errs = append(errs, fmt.Errorf("mirrors.%s: no mirror", host))
		}
		for i, m := range mirrors {
			if _, err := c.endpoint(m); err != nil {
				errs = append(errs, fmt.Errorf("mirrors.%s[%d]: %w", host, i, err))
			}
		}
	}
	for i, rw := range c.Rewrites {
		if rw.From == "" || rw.To == "" {
			errs = append(errs, fmt.Errorf("rewrites[%d]: from and to are both required", i))
		}
	}
	for host, cr := range c.Credentials {
		if cr.Username != "" && cr.UsernameFile != "" {
			errs = append(errs, fmt.Errorf("credentials.%s: username and usernameFile are exclusive", host))
		}
		if cr.Username == "" && cr.UsernameFile == "" {
			errs = append(errs, fmt.Errorf("credentials.%s: username or usernameFile is required", host))
		}
		if cr.PasswordFile == "" {
			errs = append(errs, fmt.Errorf("credentials.%s: passwordFile is required", host))
		}
		for _, f := range []string{cr.UsernameFile, cr.PasswordFile} {
			if f != "" && !filepath.IsAbs(f) {
				errs = append(errs, fmt.Errorf("credentials.%s: %q must be an absolute path", host, f))
			}
		}
	}
	for _, h := range c.Insecure {
		if h == "" || strings.Contains(h, "/") {
			errs = append(errs, fmt.Errorf("insecure: %q is not a host", h))
		}
	}
	return errors.Join(errs...)
}

// endpoint parses a mirror URL into a registry host (without client or
// authorizer).
func (c *RegistryConfig) endpoint(raw string) (docker.RegistryHost, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return docker.RegistryHost{}, fmt.Errorf("%q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return docker.RegistryHost{}, fmt.Errorf("%q: scheme must be http or https", raw)
	case u.Host == "":
		return docker.RegistryHost{}, fmt.Errorf("%q: no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return docker.RegistryHost{}, fmt.Errorf("%q: only scheme, host and path are allowed (credentials go under credentials)", raw)
	case u.Scheme == "http" && !c.insecure(u.Host):
		return docker.RegistryHost{}, fmt.Errorf("%q: plain HTTP to %s needs it under insecure", raw, u.Host)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, "/v2") {
		p += "/v2"
	}
	return docker.RegistryHost{
		Host:         u.Host,
		Scheme:       u.Scheme,
		Path:         p,
		Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
	}, nil
}

func (c *RegistryConfig) insecure(host string) bool {
	return slices.Contains(c.Insecure, host)
}

// rewrite returns the name to pull for a normalized image name; a name
// pinned by digest keeps its digest.
func (c *RegistryConfig) rewrite(name string) (string, error) {
	for _, rw := range c.Rewrites {
		if !strings.HasPrefix(name, rw.From) {
			continue
		}
		to := rw.To + strings.TrimPrefix(name, rw.From)
		n, err := Normalize(to)
		if err != nil {
			return "", fmt.Errorf("rewrite %s -> %s: %w", rw.From, rw.To, err)
		}
		if orig, err := reference.ParseNormalizedNamed(name); err == nil {
			if od, ok := orig.(reference.Digested); ok {
				nr, _ := reference.ParseNormalizedNamed(n)
				if nd, ok := nr.(reference.Digested); !ok || nd.Digest() != od.Digest() {
					return "", fmt.Errorf("rewrite %s -> %s: %s loses the digest of %s", rw.From, rw.To, n, name)
				}
			}
		}
		return n, nil
	}
	return name, nil
}

// pullTrace records which registry hosts answered a pull's requests.
type pullTrace struct {
	base http.RoundTripper
	mu   sync.Mutex
	from []string // hosts that served a manifest
}

func (t *pullTrace) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode < 300 && strings.Contains(req.URL.Path, "/manifests/") {
		t.mu.Lock()
		if !slices.Contains(t.from, req.URL.Host) {
			t.from = append(t.from, req.URL.Host)
		}
		t.mu.Unlock()
	}
	return resp, err
}

func (t *pullTrace) hosts() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.from)
}

// resolver builds a resolver for one pull of name (normalized): the
// mirrors of the registry first, then the registry itself unless
// Fallback is false; credentials read from their files when a registry
// asks for them. The returned resolver resolves name to itself, so the
// image keeps its name whichever host or rewritten name served it.
func (c *RegistryConfig) resolver(name string, pod map[string]reconcile.PullCredential) (remotes.Resolver, string, *pullTrace, error) {
	target, err := c.rewrite(name)
	if err != nil {
		return nil, "", nil, err
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, "", nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	trace := &pullTrace{base: base.Clone()}
	client := &http.Client{Transport: trace}
	creds := c.creds
	if len(pod) > 0 {
		// The pod's imagePullSecrets first, then the configured files.
		creds = func(host string) (string, string, error) {
			if cr, ok := pod[host]; ok {
				return cr.Username, cr.Password, nil
			}
			return c.creds(host)
		}
	}
	auth := docker.NewDockerAuthorizer(
		docker.WithAuthClient(client),
		docker.WithAuthCreds(creds),
	)
	hosts := func(host string) ([]docker.RegistryHost, error) {
		var out []docker.RegistryHost
		for _, m := range c.Mirrors[host] {
			h, err := c.endpoint(m)
			if err != nil {
				return nil, err
			}
			h.Client, h.Authorizer = client, auth
			out = append(out, h)
		}
		if c.Fallback == nil || *c.Fallback || len(out) == 0 {
			h := docker.RegistryHost{
				Client:       client,
				Authorizer:   auth,
				Host:         host,
				Scheme:       "https",
				Path:         "/v2",
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			}
			if host == "docker.io" {
				h.Host = "registry-1.docker.io"
			}
			if c.insecure(host) {
				h.Scheme = "http"
			}
			out = append(out, h)
		}
		return out, nil
	}
	inner := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	return &renamed{inner: inner, name: name, target: target}, target, trace, nil
}

// creds reads a host's credentials from their files (each time: rotated
// files apply at the next pull). Their content is never logged.
func (c *RegistryConfig) creds(host string) (string, string, error) {
	cr, ok := c.Credentials[host]
	if !ok {
		return "", "", nil
	}
	user := cr.Username
	if cr.UsernameFile != "" {
		b, err := os.ReadFile(cr.UsernameFile)
		if err != nil {
			return "", "", fmt.Errorf("credentials of %s: %w", host, err)
		}
		user = strings.TrimRight(string(b), "\r\n")
	}
	b, err := os.ReadFile(cr.PasswordFile)
	if err != nil {
		return "", "", fmt.Errorf("credentials of %s: %w", host, err)
	}
	return user, strings.TrimRight(string(b), "\r\n"), nil
}

// renamed resolves and fetches target while answering with name, so that
// containerd records the image under the name the manifest gave.
type renamed struct {
	inner        remotes.Resolver
	name, target string
}

func (r *renamed) Resolve(ctx context.Context, ref string) (string, ocispec.Descriptor, error) {
	if ref != r.name {
		return r.inner.Resolve(ctx, ref)
	}
	_, desc, err := r.inner.Resolve(ctx, r.target)
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	return r.name, desc, nil
}

func (r *renamed) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	if ref == r.name {
		ref = r.target
	}
	return r.inner.Fetcher(ctx, ref)
}

func (r *renamed) Pusher(ctx context.Context, ref string) (remotes.Pusher, error) {
	return nil, errors.New("the agent does not push images")
}

// explainPull makes a registry's refusal readable: which hosts were tried
// and whether credentials were configured for them (pod: the pod's
// imagePullSecrets' hosts).
func (c *RegistryConfig) explainPull(name, target string, pod map[string]reconcile.PullCredential, err error) error {
	if err == nil {
		return nil
	}
	via := ""
	if target != name {
		via = " (as " + target + ")"
	}
	if errors.Is(err, docker.ErrInvalidAuthorization) || strings.Contains(err.Error(), "401 Unauthorized") {
		host := reference.Domain(mustNamed(target))
		var hosts []string
		for _, m := range c.Mirrors[host] {
			if h, err := c.endpoint(m); err == nil {
				hosts = append(hosts, h.Host)
			}
		}
		hosts = append(hosts, host)
		var with, without []string
		var fromPod []string
		for _, h := range hosts {
			if _, ok := pod[h]; ok {
				fromPod = append(fromPod, h)
			} else if _, ok := c.Credentials[h]; ok {
				with = append(with, h)
			} else {
				without = append(without, h)
			}
		}
		msg := "registry refused the pull"
		switch {
		case len(fromPod) > 0:
			msg += fmt.Sprintf(": the imagePullSecrets credentials for %s were not accepted", strings.Join(fromPod, ", "))
		case len(with) > 0:
			msg += fmt.Sprintf(": the credentials configured for %s were not accepted", strings.Join(with, ", "))
		default:
			msg += fmt.Sprintf(": no credentials configured for %s", strings.Join(without, ", "))
		}
		return fmt.Errorf("pull %s%s: %s: %w", name, via, msg, err)
	}
	return fmt.Errorf("pull %s%s: %w", name, via, err)
}

func mustNamed(name string) reference.Named {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		n, _ = reference.ParseNormalizedNamed("invalid.invalid/invalid")
	}
	return n
}
