// Package git is the Source on go-git: a bare clone on disk under the
// agent's data directory, fetched on demand, read as trees (never checked
// out). It must never push to the desired repository and never discard
// fetched objects when the remote is unreachable.
package git

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources"
)

// Auth names credential files; which one is used depends on the URL's
// scheme. Secrets are read from files, never from flags.
type Auth struct {
	// SSHKeyFile is a private key for ssh:// remotes. Without one, a
	// running ssh-agent (SSH_AUTH_SOCK) offers its keys.
	SSHKeyFile string `json:"sshKeyFile,omitempty"`
	// SSHKeyPassphraseFile holds the passphrase of an encrypted
	// SSHKeyFile.
	SSHKeyPassphraseFile string `json:"sshKeyPassphraseFile,omitempty"`
	// KnownHostsFile checks the server's host key for ssh:// remotes
	// (default: ~/.ssh/known_hosts). Host keys are always checked.
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
	// TokenFile holds a token for https:// remotes, sent as basic auth
	// with user "x-access-token" (GitHub, Gitea and GitLab accept it).
	TokenFile string `json:"tokenFile,omitempty"`
	// BasicAuthFile holds "user:password" for https:// remotes.
	BasicAuthFile string `json:"basicAuthFile,omitempty"`
	// CAFile is a PEM bundle of certificate authorities trusted for
	// https:// remotes besides the system's (a company's private CA).
	CAFile string `json:"caFile,omitempty"`
	// ClientCertFile and ClientKeyFile are a PEM certificate and its key
	// shown to https:// remotes that ask for one (mutual TLS).
	ClientCertFile string `json:"clientCertFile,omitempty"`
	ClientKeyFile  string `json:"clientKeyFile,omitempty"`
	// InsecureSkipTLSVerify accepts any certificate of https:// remotes.
	// Only for tests and emergencies: anyone on the path can then serve
	// the repository. Logged loudly.
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`
}

// Access is how to reach one remote: the auth method and TLS settings
// every fetch and push to it uses.
type Access struct {
	Auth            transport.AuthMethod
	CABundle        []byte
	InsecureSkipTLS bool
	// ClientCert and ClientKey (PEM) are shown to a host that asks.
	ClientCert, ClientKey []byte
}

// PushOptions are go-git's options to push specs to url with this
// access (auth, TLS, client certificate), so that every push carries
// the same settings as Fetch does.
func (acc Access) PushOptions(url string, specs []config.RefSpec) *gogit.PushOptions {
	return &gogit.PushOptions{RemoteName: "origin", RemoteURL: url, RefSpecs: specs, Auth: acc.Auth,
		CABundle: acc.CABundle, InsecureSkipTLS: acc.InsecureSkipTLS, ClientCert: acc.ClientCert, ClientKey: acc.ClientKey}
}

// Access returns the auth method and TLS settings for url.
func (a Auth) Access(url string) (Access, error) {
	m, err := a.Method(url)
	if err != nil {
		return Access{}, err
	}
	acc := Access{Auth: m}
	if strings.HasPrefix(url, "https://") {
		acc.InsecureSkipTLS = a.InsecureSkipTLSVerify
		if a.CAFile != "" {
			b, err := os.ReadFile(a.CAFile)
			if err != nil {
				return Access{}, fmt.Errorf("CA file: %w", err)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(b) {
				return Access{}, fmt.Errorf("CA file %s: no PEM certificate in it", a.CAFile)
			}
			acc.CABundle = b
		}
		if (a.ClientCertFile == "") != (a.ClientKeyFile == "") {
			return Access{}, errors.New("a client certificate needs both --client-cert-file and --client-key-file")
		}
		if a.ClientCertFile != "" {
			cert, err := os.ReadFile(a.ClientCertFile)
			if err != nil {
				return Access{}, fmt.Errorf("client certificate: %w", err)
			}
			key, err := os.ReadFile(a.ClientKeyFile)
			if err != nil {
				return Access{}, fmt.Errorf("client key: %w", err)
			}
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				return Access{}, fmt.Errorf("client certificate %s and key %s: %w", a.ClientCertFile, a.ClientKeyFile, err)
			}
			acc.ClientCert, acc.ClientKey = cert, key
		}
	}
	return acc, nil
}

// RegisterFlags binds the credential-file flags of every command that
// reads a repository; defaults are a's current values.
func (a *Auth) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.SSHKeyFile, "ssh-key", a.SSHKeyFile, "SSH private key file for ssh:// remotes")
	fs.StringVar(&a.SSHKeyPassphraseFile, "ssh-key-passphrase-file", a.SSHKeyPassphraseFile, "file holding the passphrase of an encrypted --ssh-key")
	fs.StringVar(&a.KnownHostsFile, "known-hosts", a.KnownHostsFile, "known_hosts file for ssh:// remotes")
	fs.StringVar(&a.TokenFile, "token-file", a.TokenFile, "file holding a token for https:// remotes")
	fs.StringVar(&a.BasicAuthFile, "basic-auth-file", a.BasicAuthFile, "file holding user:password for https:// remotes")
	fs.StringVar(&a.CAFile, "ca-file", a.CAFile, "PEM bundle of certificate authorities trusted for https:// remotes, besides the system's")
	fs.StringVar(&a.ClientCertFile, "client-cert-file", a.ClientCertFile, "PEM client certificate shown to https:// remotes that ask for one (mutual TLS)")
	fs.StringVar(&a.ClientKeyFile, "client-key-file", a.ClientKeyFile, "PEM key of --client-cert-file")
	fs.BoolVar(&a.InsecureSkipTLSVerify, "insecure-skip-tls-verify", a.InsecureSkipTLSVerify, "accept any certificate of https:// remotes (tests and emergencies only: logged as a warning)")
}

// Method returns the go-git auth method for url, or nil for none.
func (a Auth) Method(url string) (transport.AuthMethod, error) {
	switch {
	case strings.HasPrefix(url, "ssh://") || (!strings.Contains(url, "://") && strings.Contains(url, "@")):
		if a.SSHKeyFile == "" && os.Getenv("SSH_AUTH_SOCK") == "" {
			return nil, nil
		}
		user := "git"
		if ep, err := transport.NewEndpoint(url); err == nil && ep.User != "" {
			user = ep.User
		}
		var files []string
		if a.KnownHostsFile != "" {
			files = append(files, a.KnownHostsFile)
		}
		cb, err := gitssh.NewKnownHostsCallback(files...)
		if err != nil {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
		if a.SSHKeyFile == "" {
			agent, err := gitssh.NewSSHAgentAuth(user)
			if err != nil {
				return nil, fmt.Errorf("ssh-agent (SSH_AUTH_SOCK): %w", err)
			}
			agent.HostKeyCallback = cb
			return agent, nil
		}
		pass := ""
		if a.SSHKeyPassphraseFile != "" {
			if pass, err = readSecret(a.SSHKeyPassphraseFile); err != nil {
				return nil, err
			}
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, pass)
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %w", a.SSHKeyFile, err)
		}
		keys.HostKeyCallback = cb
		return keys, nil
	case strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://"):
		if a.TokenFile != "" {
			tok, err := readSecret(a.TokenFile)
			if err != nil {
				return nil, err
			}
			return &githttp.BasicAuth{Username: "x-access-token", Password: tok}, nil
		}
		if a.BasicAuthFile != "" {
			s, err := readSecret(a.BasicAuthFile)
			if err != nil {
				return nil, err
			}
			u, p, ok := strings.Cut(s, ":")
			if !ok {
				return nil, fmt.Errorf("basic auth file %s: want user:password", a.BasicAuthFile)
			}
			return &githttp.BasicAuth{Username: u, Password: p}, nil
		}
	}
	return nil, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read credential file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Config says what to follow and where to keep the clone.
type Config struct {
	// URL is the remote fetched first.
	URL string
	// Mirrors are fetched in order when URL (and the mirrors before) fail;
	// every Sync starts again from URL, so the primary is used as soon as
	// it answers again.
	Mirrors []string
	// Branch is followed unless Ref is set (default main).
	Branch string
	// Ref pins a tag or a full commit id.
	Ref string
	// Dir is the bare clone's directory.
	Dir  string
	Auth Auth
}

// Repo is a Source on a bare go-git clone. Not safe for concurrent use.
type Repo struct {
	cfg  Config
	repo *gogit.Repository
	urls []string
	auth []Access
}

var _ sources.Source = (*Repo)(nil)

// Open opens the clone in cfg.Dir, creating it when missing and
// re-creating it when it is corrupt. It needs no network, so an agent
// starts with its last state when the remote is unreachable.
func Open(ctx context.Context, cfg Config) (*Repo, error) {
	if cfg.Branch == "" {
		cfg.Branch = DefaultBranch
	}
	r := &Repo{cfg: cfg, urls: append([]string{cfg.URL}, cfg.Mirrors...)}
	for _, u := range r.urls {
		auth, err := cfg.Auth.Access(u)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %w", u, err)
		}
		r.auth = append(r.auth, auth)
	}
	repo, err := OpenBare(cfg.Dir, cfg.URL)
	if err != nil {
		return nil, err
	}
	r.repo = repo
	// A clone whose followed ref points at an unreadable commit is
	// half-written: start over (the remote has everything again).
	if ref, err := repo.Reference(r.trackingRef(), true); err == nil {
		if _, err := repo.CommitObject(ref.Hash()); err != nil {
			if err := os.RemoveAll(cfg.Dir); err != nil {
				return nil, err
			}
			if r.repo, err = OpenBare(cfg.Dir, cfg.URL); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// OpenBare opens or creates a bare repository in dir with remote origin
// at url. A directory that does not open as a repository is moved aside
// and re-created.
func OpenBare(dir, url string) (*gogit.Repository, error) {
	repo, err := gogit.PlainOpen(dir)
	if err == nil {
		if _, herr := repo.Storer.Reference(plumbing.HEAD); herr != nil {
			err = herr
		}
	}
	if err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			aside := fmt.Sprintf("%s.corrupt-%d", dir, time.Now().UnixNano())
			if rerr := os.Rename(dir, aside); rerr != nil {
				return nil, fmt.Errorf("move corrupt clone aside: %w", rerr)
			}
			_ = os.RemoveAll(aside)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		repo, err = gogit.PlainInit(dir, true)
		if err != nil {
			return nil, fmt.Errorf("init clone %s: %w", dir, err)
		}
	}
	rem, err := repo.Remote("origin")
	switch {
	case errors.Is(err, gogit.ErrRemoteNotFound):
		_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}})
	case err == nil && (len(rem.Config().URLs) == 0 || rem.Config().URLs[0] != url):
		if err = repo.DeleteRemote("origin"); err == nil {
			_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("configure remote: %w", err)
	}
	return repo, nil
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

func (r *Repo) trackingRef() plumbing.ReferenceName {
	if r.cfg.Ref != "" {
		if fullSHA.MatchString(r.cfg.Ref) {
			return plumbing.ReferenceName("refs/driftless/pinned")
		}
		return plumbing.NewTagReferenceName(r.cfg.Ref)
	}
	return plumbing.NewRemoteReferenceName("origin", r.cfg.Branch)
}

// Sync fetches and resolves the followed revision. It tries URL, then
// each mirror in order, and stops at the first that answers; the
// revision names the remote it came from. When every remote fails, the
// error joins theirs (ErrUnreachable or ErrRefNotFound each).
func (r *Repo) Sync(ctx context.Context) (sources.Revision, error) {
	var specs []config.RefSpec
	switch {
	case r.cfg.Ref == "":
		specs = []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/origin/%s", r.cfg.Branch, r.cfg.Branch))}
	case fullSHA.MatchString(r.cfg.Ref):
		if _, err := r.repo.CommitObject(plumbing.NewHash(r.cfg.Ref)); err != nil {
			specs = []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
		}
	default:
		specs = []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/tags/%s:refs/tags/%s", r.cfg.Ref, r.cfg.Ref))}
	}
	remote := ""
	if len(specs) > 0 {
		var errs []error
		for i, u := range r.urls {
			err := Fetch(ctx, r.repo, u, r.auth[i], specs)
			if err == nil {
				remote = u
				break
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if remote == "" {
			return sources.Revision{}, errors.Join(errs...)
		}
	}
	rev, err := r.resolve(remote)
	if err == nil {
		r.hold(rev.Commit)
	}
	return rev, err
}

// heldRef names the newest desired commit the clone holds for its peers:
// what the last fetch from a remote or from a peer brought. It is the
// ref a peer's listener serves to followers.
const heldRef = plumbing.ReferenceName("refs/driftless/held")

func (r *Repo) hold(commit string) {
	_ = r.repo.Storer.SetReference(plumbing.NewHashReference(heldRef, plumbing.NewHash(commit)))
}

// Held is the desired commit this clone serves its peers ("" before the
// first fetch).
func (r *Repo) Held() string {
	ref, err := r.repo.Reference(heldRef, true)
	if err != nil {
		return ""
	}
	return ref.Hash().String()
}

// Head returns the followed revision as the clone has it, without
// fetching: what the last fetch or an adopted bundle left.
func (r *Repo) Head() (sources.Revision, error) {
	return r.resolve("")
}

// AdoptHead moves the clone's followed branch to commit (present
// locally), as a fetch would, so that Head reports it after a restart or
// while every remote is down. It does nothing when a tag or commit is
// pinned.
func (r *Repo) AdoptHead(commit string) error {
	if r.cfg.Ref != "" {
		return nil
	}
	if _, err := r.repo.CommitObject(plumbing.NewHash(commit)); err != nil {
		return fmt.Errorf("commit %s: %w", commit, err)
	}
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(r.trackingRef(), plumbing.NewHash(commit))); err != nil {
		return err
	}
	r.hold(commit)
	return nil
}

// resolve reads the followed revision from the clone.
func (r *Repo) resolve(remote string) (sources.Revision, error) {
	var hash plumbing.Hash
	if fullSHA.MatchString(r.cfg.Ref) {
		hash = plumbing.NewHash(r.cfg.Ref)
		if _, err := r.repo.CommitObject(hash); err != nil {
			return sources.Revision{}, fmt.Errorf("commit %s: %w", r.cfg.Ref, sources.ErrRefNotFound)
		}
		_ = r.repo.Storer.SetReference(plumbing.NewHashReference(r.trackingRef(), hash))
	} else {
		ref, err := r.repo.Reference(r.trackingRef(), true)
		if err != nil {
			return sources.Revision{}, fmt.Errorf("%s: %w", r.trackingRef(), sources.ErrRefNotFound)
		}
		hash = ref.Hash()
		if tag, err := r.repo.TagObject(hash); err == nil { // annotated tag
			c, err := tag.Commit()
			if err != nil {
				return sources.Revision{}, fmt.Errorf("tag %s: %w", r.cfg.Ref, err)
			}
			hash = c.Hash
		}
	}
	c, err := r.repo.CommitObject(hash)
	if err != nil {
		return sources.Revision{}, fmt.Errorf("read commit %s: %w", hash, err)
	}
	return sources.Revision{
		Commit:    c.Hash.String(),
		Time:      c.Committer.When,
		Author:    fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Committer: fmt.Sprintf("%s <%s>", c.Committer.Name, c.Committer.Email),
		Subject:   strings.SplitN(c.Message, "\n", 2)[0],
		Remote:    RedactURL(remote),
	}, nil
}

// URLs returns the remotes in the order Sync tries them.
func (r *Repo) URLs() []string { return append([]string(nil), r.urls...) }

// Fetch fetches specs from url, classifying errors: already up to date is
// success, a missing ref is ErrRefNotFound, anything else
// ErrUnreachable.
func Fetch(ctx context.Context, repo *gogit.Repository, url string, acc Access, specs []config.RefSpec) error {
	err := repo.FetchContext(ctx, &gogit.FetchOptions{RemoteName: "origin", RemoteURL: url, RefSpecs: specs, Auth: acc.Auth, Tags: gogit.NoTags, Force: true,
		CABundle: acc.CABundle, InsecureSkipTLS: acc.InsecureSkipTLS, ClientCert: acc.ClientCert, ClientKey: acc.ClientKey})
	switch {
	case err == nil, errors.Is(err, gogit.NoErrAlreadyUpToDate):
		return nil
	case isNoMatchingRef(err), errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fmt.Errorf("fetch %s: %w: %s", RedactURL(url), sources.ErrRefNotFound, redactErr(err, url))
	default:
		if t := Throttle(err, time.Now()); t != nil {
			return fmt.Errorf("fetch %s: %w: %w", RedactURL(url), sources.ErrUnreachable, t)
		}
		return fmt.Errorf("fetch %s: %w: %s", RedactURL(url), sources.ErrUnreachable, redactErr(err, url))
	}
}

// Throttle recognizes, in an error of go-git's HTTP transport, a Git
// host's 429 or 503 answer and the wait its Retry-After header asks for
// (seconds, or an HTTP date, counted from now); nil for any other error.
func Throttle(err error, now time.Time) *sources.Throttled {
	var ue *plumbing.UnexpectedError
	if !errors.As(err, &ue) {
		return nil
	}
	var he *githttp.Err
	if !errors.As(ue.Err, &he) || he.Response == nil {
		return nil
	}
	code := he.Response.StatusCode
	if code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
		return nil
	}
	t := &sources.Throttled{Status: code}
	v := strings.TrimSpace(he.Response.Header.Get("Retry-After"))
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		t.After = time.Duration(n) * time.Second
	} else if at, err := http.ParseTime(v); err == nil && at.After(now) {
		t.After = at.Sub(now).Round(time.Second)
	}
	return t
}

func isNoMatchingRef(err error) bool {
	var nm gogit.NoMatchingRefSpecError
	if errors.As(err, &nm) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "couldn't find remote ref") || strings.Contains(s, "no matching ref")
}

// Files reads the manifest files below dir of commit.
func (r *Repo) Files(ctx context.Context, commit, dir string) ([]manifest.File, error) {
	return ReadFiles(ctx, r.repo, commit, dir)
}

// ReadFiles reads every *.yaml/*.yml blob below dir of commit's tree.
func ReadFiles(ctx context.Context, repo *gogit.Repository, commit, dir string) ([]manifest.File, error) {
	c, err := repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("tree of %s: %w", commit, err)
	}
	dir = strings.Trim(path.Clean("/"+dir), "/")
	if dir != "" {
		tree, err = tree.Tree(dir)
		if err != nil {
			return nil, fmt.Errorf("path %q in %s: %w", dir, commit[:7], err)
		}
	}
	var out []manifest.File
	err = tree.Files().ForEach(func(f *object.File) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !manifest.IsManifestPath(f.Name) || !f.Mode.IsFile() {
			return nil
		}
		rd, err := f.Reader()
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name, err)
		}
		defer rd.Close()
		b, err := io.ReadAll(rd)
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name, err)
		}
		out = append(out, manifest.File{Path: f.Name, Data: b})
		return nil
	})
	return out, err
}

// Has reports whether commit is in the local clone.
func (r *Repo) Has(commit string) bool {
	_, err := r.repo.CommitObject(plumbing.NewHash(commit))
	return err == nil
}

// IsAncestor reports whether ancestor is commit or one of its ancestors.
func (r *Repo) IsAncestor(ancestor, commit string) (bool, error) {
	if ancestor == commit {
		return true, nil
	}
	a, err := r.repo.CommitObject(plumbing.NewHash(ancestor))
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", ancestor, err)
	}
	c, err := r.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", commit, err)
	}
	return a.IsAncestor(c)
}

// CLIEnv is the environment that makes the git CLI use these
// credentials for url, as Method does for go-git: the SSH key and
// known_hosts file (host keys always checked), or the token or basic
// auth as an Authorization header.
func (a Auth) CLIEnv(url string) ([]string, error) {
	switch {
	case strings.HasPrefix(url, "ssh://") || (!strings.Contains(url, "://") && strings.Contains(url, "@")):
		if a.SSHKeyFile == "" {
			return nil, nil
		}
		if a.SSHKeyPassphraseFile != "" {
			return nil, errors.New("the git CLI cannot read the passphrase of an encrypted --ssh-key: add the key to ssh-agent instead")
		}
		cmd := "ssh -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -i " + shellQuote(a.SSHKeyFile)
		if a.KnownHostsFile != "" {
			cmd += " -o UserKnownHostsFile=" + shellQuote(a.KnownHostsFile)
		}
		return []string{"GIT_SSH_COMMAND=" + cmd}, nil
	case strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://"):
		m, err := a.Method(url)
		if err != nil {
			return nil, err
		}
		var kv [][2]string
		if b, ok := m.(*githttp.BasicAuth); ok {
			cred := base64.StdEncoding.EncodeToString([]byte(b.Username + ":" + b.Password))
			kv = append(kv, [2]string{"http.extraHeader", "Authorization: Basic " + cred})
		}
		// git's own variables for TLS (its http.sslCAInfo set through
		// GIT_CONFIG_COUNT is not honoured by every build); the CA file
		// replaces the system's bundle there.
		var env []string
		if a.CAFile != "" {
			env = append(env, "GIT_SSL_CAINFO="+a.CAFile)
		}
		if a.InsecureSkipTLSVerify {
			env = append(env, "GIT_SSL_NO_VERIFY=1")
		}
		if a.ClientCertFile != "" {
			env = append(env, "GIT_SSL_CERT="+a.ClientCertFile, "GIT_SSL_KEY="+a.ClientKeyFile)
		}
		if len(kv) == 0 {
			return env, nil
		}
		env = append(env, fmt.Sprintf("GIT_CONFIG_COUNT=%d", len(kv)))
		for i, p := range kv {
			env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, p[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, p[1]))
		}
		return env, nil
	}
	return nil, nil
}

// shellQuote quotes s for sh (GIT_SSH_COMMAND is run by a shell).
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// RedactURL drops the user information of a URL (a token in
// https://user:token@host/...), keeping scheme, host and path: what logs,
// errors, metrics and status show of a remote.
func RedactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if path != "" {
		return scheme + "://" + host + "/" + path
	}
	return scheme + "://" + host
}

// redactErr is err's text without url's user information (go-git's
// errors may quote the URL, its password included).
func redactErr(err error, url string) string {
	msg := err.Error()
	if r := RedactURL(url); r != url {
		msg = strings.ReplaceAll(msg, url, r)
	}
	if u, perr := neturl.Parse(url); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "REDACTED")
		}
	}
	return msg
}

// RedactError is err with url's user information removed from its text.
func RedactError(err error, url string) error {
	if err == nil {
		return nil
	}
	if msg := redactErr(err, url); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// FetchFromPeer fetches commit from url (a peer's listener): the commit
// the peer holds, with its history, lands in a ref of its own, and the
// commits it brings become available to Has and Files. commit is asked
// for by hash, so a peer cannot pass off other content as it; a peer
// that does not bring it is an error naming the peer. The followed ref
// does not move; the clone holds commit for its own peers from then on.
func (r *Repo) FetchFromPeer(ctx context.Context, url string, auth transport.AuthMethod, commit string, timeout time.Duration) error {
	if _, err := FetchFromPeer(ctx, r.repo, url, auth, heldRef, plumbing.ReferenceName("refs/driftless/peer/followed"), timeout); err != nil {
		return err
	}
	if !r.Has(commit) {
		return fmt.Errorf("peer %s: does not hold desired commit %s", RedactURL(url), shortHash(commit))
	}
	r.hold(commit)
	return nil
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
