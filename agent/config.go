package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/leader"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/reconcile/cni"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// Config is the agent's configuration. It is read once at start and never
// mutated afterwards. The YAML keys of a config file are the json tags.
type Config struct {
	// Node is this node's name, unique in the cluster (default: hostname).
	Node string `json:"node"`
	// Labels are this node's labels, matched by nodeSelector.
	Labels map[string]string `json:"labels,omitempty"`
	// Capacity overrides what the node offers to the scheduler ("cpu",
	// "memory" as Kubernetes quantities); default: the host's.
	Capacity map[string]string `json:"capacity,omitempty"`

	// Repo lists the URLs of the desired-state repository (file://,
	// git://, ssh://, https://) in order of preference: the first is
	// fetched, the next ones only when those before fail, and every poll
	// starts again from the first. In YAML a list or one string
	// (comma-separated).
	Repo URLList `json:"repo"`
	// Branch is followed unless Ref pins a tag or commit.
	Branch string `json:"branch"`
	// Ref pins a tag or a commit id instead of following Branch.
	Ref string `json:"ref,omitempty"`
	// Path is the sub-directory of the repository holding the manifests.
	Path string `json:"path,omitempty"`
	// Verify is the commit signature policy: off, head (the new head must
	// be signed by a trusted key) or all (every commit since the one in
	// force).
	Verify string `json:"verify,omitempty"`
	// TrustedKeysFile holds the armored OpenPGP public keys trusted to
	// sign desired commits.
	TrustedKeysFile string `json:"trustedKeysFile,omitempty"`
	// AllowedSignersFile is an ssh-keygen allowed_signers file: SSH keys
	// trusted to sign desired commits (namespace "git"). With both files,
	// a commit signed by either kind of trusted key passes.
	AllowedSignersFile string `json:"allowedSignersFile,omitempty"`
	// NodeKeyFile is this node's SSH private key; it signs the status
	// commits the node makes as leader. Default: DataDir/node-key, an
	// ed25519 key generated (mode 0600) on first start.
	NodeKeyFile string `json:"nodeKeyFile,omitempty"`
	// AllowNonFastForward accepts a new head that does not descend from
	// the commit in force (force push, rollback to an older commit).
	AllowNonFastForward bool `json:"allowNonFastForward,omitempty"`
	// AgeIdentityFile is an age identity file (AGE-SECRET-KEY-... lines)
	// or an unencrypted SSH private key (ed25519 or RSA) that decrypts
	// sealed Secrets. Without it, replicas using a sealed Secret stay
	// Pending on this node.
	AgeIdentityFile string `json:"ageIdentityFile,omitempty"`
	// RequireSealedSecrets refuses a desired commit holding a plain
	// (unsealed) Secret, as any invalid commit is refused. Give every
	// node of a cluster the same setting.
	RequireSealedSecrets bool `json:"requireSealedSecrets,omitempty"`
	// BundleInbox is a directory watched for git bundles (`git bundle
	// create`), for sites Git cannot reach: each complete *.bundle is
	// imported and its head taken like a fetched one, then moved to done/
	// or rejected/ (with a .reason file).
	BundleInbox string `json:"bundleInbox,omitempty"`
	// Auth holds credential files for the desired and status repositories.
	Auth git.Auth `json:"auth,omitempty"`

	// StatusRepo is where the status branch lives (default: Repo's first
	// URL); several are mirrors of one branch: every read follows the
	// history that contains the others, every write goes to each,
	// fast-forward only, and a fork is reported, never forced.
	StatusRepo URLList `json:"statusRepo,omitempty"`
	// StatusBranch is the branch the placements are written to. Several
	// clusters sharing one repository each use their own.
	StatusBranch string `json:"statusBranch"`
	// StatusInterval bounds how often status commits are made: changes are
	// coalesced into at most one commit per interval.
	StatusInterval Duration `json:"statusInterval"`

	// DataDir holds the clones, logs, volumes and the agent's own state.
	DataDir string `json:"dataDir"`
	// VolumesDir holds the directories of the claims bound to this node
	// (default DataDir/volumes); put it on the disk that should hold the
	// data. The list of directories created is kept in DataDir, so a
	// VolumesDir that went missing is reported, never re-created empty.
	VolumesDir string `json:"volumesDir,omitempty"`
	// VolumeSizeLimit enforces the claims' sizes: "off" (the default)
	// records and checks them at binding only; "loop" gives each claim
	// with a size a file system of that size (a sparse ext4 image under
	// VolumesDir, loop-mounted on its directory), so writes past it fail.
	VolumeSizeLimit string `json:"volumeSizeLimit,omitempty"`
	// PauseBinary is the statically linked program that holds the shared
	// PID namespace of a replica with shareProcessNamespace, run with the
	// argument "pause" in an empty root file system (default: this
	// driftless binary, which `make build` links statically).
	PauseBinary string `json:"pauseBinary,omitempty"`

	// ContainerdAddress is containerd's socket.
	ContainerdAddress string `json:"containerdAddress"`
	// Namespace is the containerd namespace the agent owns containers in.
	Namespace string `json:"namespace"`
	// ImagesDir holds OCI image archives (*.tar) imported on demand, for
	// sites without a registry.
	ImagesDir string `json:"imagesDir,omitempty"`
	// RegistryConfigFile is a YAML file of registry mirrors, name
	// rewrites, credential files and plain-HTTP hosts for image pulls
	// (reconcile/containerd.RegistryConfig), read at start.
	RegistryConfigFile string `json:"registryConfig,omitempty"`
	// LogMaxSize is the size a container's log file may reach before it
	// is rotated (a quantity: 10Mi); LogMaxFiles the number of files kept
	// per container, the current one included. Bigger keeps more history
	// on disk: at most LogMaxSize*LogMaxFiles per container and run, twice
	// that with the previous run's.
	LogMaxSize  string `json:"logMaxSize"`
	LogMaxFiles int    `json:"logMaxFiles"`

	// CNIBinDir holds the CNI plugins (bridge, host-local, portmap for
	// the agent's own network). Default: the first of /opt/cni/bin and
	// /usr/lib/cni (Debian's containernetworking-plugins) that exists.
	CNIBinDir string `json:"cniBinDir"`
	// CNIConfDir, when set, selects the user's own network: the first
	// *.conflist, *.conf or *.json file in it (read for each new
	// replica). Empty: the agent's own network (bridge driftless0,
	// addresses from PodCIDR, NAT to the outside, hostPorts published).
	CNIConfDir string `json:"cniConfDir,omitempty"`
	// PodCIDR is the IPv4 subnet of the agent's own network. Agents
	// sharing a host share its bridge and must use the same; replica
	// addresses are reachable from their own host only.
	PodCIDR string `json:"podCIDR"`

	// ServiceCIDR is the range Service addresses (ClusterIPs) are
	// allocated from by the leader; every agent must use the same.
	ServiceCIDR string `json:"serviceCIDR"`
	// ClusterDNS is the address pods are given as their nameserver
	// (default: the tenth address of ServiceCIDR); each node sends it to
	// its own DNS server (DNSListen).
	ClusterDNS string `json:"clusterDNS,omitempty"`
	// ClusterDomain is the DNS domain of Services (cluster.local).
	ClusterDomain string `json:"clusterDomain"`
	// DNSListen is the address of this node's DNS server for its pods
	// ("off": no cluster DNS; pods get the host's resolvers).
	DNSListen string `json:"dnsListen"`
	// ServiceProxy programs Services into the node's packet filter:
	// "iptables" (one iptables-restore per change) or "off".
	ServiceProxy string `json:"serviceProxy"`
	// NodeIP is this node's address on the network between nodes
	// (NodePorts, DNS); default: the gossip address's, else the first
	// non-loopback address.
	NodeIP string `json:"nodeIP,omitempty"`
	// ClusterCIDR, when set, is one pod network across the nodes: the
	// leader gives each node a subnet of it (NodeCIDRSize bits), the
	// node's bridge uses it, and every node routes the others' subnets
	// through their addresses (PodNetwork host-gw: the nodes on one
	// segment) or over VXLAN (vxlan: any network between them that
	// carries UDP 4789). Every agent must use the same. Empty: each
	// node's own PodCIDR, reachable from the node only.
	ClusterCIDR  string `json:"clusterCIDR,omitempty"`
	NodeCIDRSize int    `json:"nodeCIDRSize"`
	PodNetwork   string `json:"podNetwork"`

	// Listen is the address of the HTTP API (health, status).
	Listen string `json:"listen"`
	// PeerListen is where calls from other nodes and the CLI are served
	// (logs, reconcile, diff), authenticated by a token derived from the
	// gossip key; default the node IP, port 7481; "off" disables it.
	PeerListen string `json:"peerListen,omitempty"`
	// NoPeerFetch makes a follower fetch new status and desired commits
	// from the Git host, never from the peers that announce them (which
	// spares the host a fetch per follower and change).
	NoPeerFetch bool `json:"noPeerFetch,omitempty"`
	// WebhookSecretFile holds the secret that signs calls to POST
	// /hooks/git (GitHub, Gitea, GitLab or X-Driftless-Signature); without
	// it the endpoint is off.
	WebhookSecretFile string `json:"webhookSecretFile,omitempty"`
	// Poll is the interval between fetches of the desired repository; a
	// random jitter of up to 10% is added.
	Poll Duration `json:"poll"`
	// Resync is the longest time between two reconcile passes when
	// nothing else wakes the loop.
	Resync Duration `json:"resync"`

	// Deadlines of the calls that leave the process. A call that runs out
	// fails, is logged and retried; no loop waits longer than this on it,
	// and the node loop never waits on Git at all.
	//
	// FetchTimeout bounds one fetch of the desired repository (every
	// mirror in turn). Shorter notices a hung server sooner; longer lets
	// a first clone of a big repository over a slow link finish.
	FetchTimeout Duration `json:"fetchTimeout"`
	// StatusTimeout bounds one read of the status branch and one status
	// commit (fetch, compare-and-swap push and its retries).
	StatusTimeout Duration `json:"statusTimeout"`
	// ContainerdTimeout bounds one containerd call (list, create, start,
	// label, remove); a stop gets the replica's grace period on top.
	ContainerdTimeout Duration `json:"containerdTimeout"`
	// PullTimeout bounds one image pull or archive import. Only the
	// replica that needs the image waits for it.
	PullTimeout Duration `json:"pullTimeout"`
	// BundleTimeout bounds the import of one git bundle from the inbox.
	BundleTimeout Duration `json:"bundleTimeout"`

	// Gossip is "ip:port" for memberlist; empty runs standalone (a
	// cluster of one, no key needed).
	Gossip string `json:"gossip,omitempty"`
	// Join lists seed nodes "ip:port"; joins retry in the background.
	Join []string `json:"join,omitempty"`
	// GossipKeyFile holds base64 gossip encryption keys (16/24/32 bytes,
	// as `consul keygen` prints them), one per line: the first encrypts,
	// every one decrypts. Re-read when it changes and on SIGHUP, so a key
	// is rotated without a restart. Required with Gossip unless
	// InsecureGossip.
	GossipKeyFile  string `json:"gossipKeyFile,omitempty"`
	InsecureGossip bool   `json:"insecureGossip,omitempty"`
	// BootstrapExpect: a new cluster elects its first leader only once
	// this many nodes are alive, so the first placements see them all.
	BootstrapExpect int `json:"bootstrapExpect,omitempty"`
	// NodeGrace is how long a node gossip declares dead keeps its
	// replicas before they are placed elsewhere.
	NodeGrace Duration `json:"nodeGrace"`
	// StatusPoll is how often a follower fetches the status branch when
	// no gossip hint arrives.
	StatusPoll Duration `json:"statusPoll"`
	// SchedulerPolicy is how the leader ranks nodes: least-allocated
	// spreads replicas (a lost node hits few), most-allocated packs them
	// (whole nodes stay free).
	SchedulerPolicy string `json:"schedulerPolicy,omitempty"`

	// Version is the agent's version, published to other nodes.
	Version string `json:"-"`
	// ClockRate, above 1, makes the leader's clock for Jobs and CronJobs
	// (schedules, deadlines, TTLs) run that many times faster than real
	// time from the agent's start. For tests only (ClockRateEnv); never a
	// config key.
	ClockRate float64 `json:"-"`
}

// ClockRateEnv names the environment variable that sets ClockRate, so
// that end-to-end tests see a CronJob run every minute without waiting
// minutes.
const ClockRateEnv = "DRIFTLESS_TEST_CLOCK_RATE"

// URLList is an ordered list of URLs, written in YAML as a list or as
// one comma-separated string.
type URLList []string

// ParseURLList splits a comma-separated list, dropping empty items.
func ParseURLList(s string) URLList {
	var out URLList
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// UnmarshalJSON reads a list of strings or one comma-separated string.
func (l *URLList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = ParseURLList(s)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a URL or a list of URLs: %w", err)
	}
	*l = ParseURLList(strings.Join(list, ","))
	return nil
}

// String joins the list with commas (flag.Value).
func (l *URLList) String() string {
	if l == nil {
		return ""
	}
	out := make([]string, len(*l))
	for i, u := range *l {
		out[i] = git.RedactURL(u)
	}
	return strings.Join(out, ",")
}

// Set replaces the list from a comma-separated string (flag.Value).
func (l *URLList) Set(s string) error {
	*l = ParseURLList(s)
	return nil
}

// Primary is the first URL, or "".
func (l URLList) Primary() string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// Duration is a time.Duration written as "5s" in YAML.
type Duration struct{ time.Duration }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// Default deadlines of Git calls (Config).
const (
	DefaultFetchTimeout  = 30 * time.Second
	DefaultStatusTimeout = 30 * time.Second
	DefaultBundleTimeout = 5 * time.Minute
)

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Node:              host,
		Branch:            git.DefaultBranch,
		StatusBranch:      status.DefaultBranch,
		StatusInterval:    Duration{2 * time.Second},
		DataDir:           "/var/lib/driftless",
		ContainerdAddress: "/run/containerd/containerd.sock",
		Namespace:         "driftless",
		LogMaxSize:        "10Mi",
		LogMaxFiles:       containerlog.DefaultMaxFiles,
		CNIBinDir:         cni.DefaultBinDir(),
		PodCIDR:           cni.DefaultPodCIDR,
		ServiceCIDR:       services.DefaultCIDR.String(),
		ClusterDomain:     "cluster.local",
		DNSListen:         "0.0.0.0:10053",
		ServiceProxy:      "iptables",
		NodeCIDRSize:      24,
		PodNetwork:        "host-gw",
		Listen:            "127.0.0.1:7480",
		Poll:              Duration{5 * time.Second},
		Resync:            Duration{10 * time.Second},
		NodeGrace:         Duration{10 * time.Second},
		StatusPoll:        Duration{10 * time.Second},
		SchedulerPolicy:   string(scheduler.LeastAllocated),
		FetchTimeout:      Duration{DefaultFetchTimeout},
		StatusTimeout:     Duration{DefaultStatusTimeout},
		ContainerdTimeout: Duration{reconcile.DefaultCallTimeout},
		PullTimeout:       Duration{reconcile.DefaultPullTimeout},
		BundleTimeout:     Duration{DefaultBundleTimeout},
	}
}

// LoadConfigFile overlays the YAML file at path onto cfg (strictly: an
// unknown key is an error).
func LoadConfigFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// fillDeadlines sets every deadline left at zero to its default.
func (c *Config) fillDeadlines() {
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{{&c.FetchTimeout, DefaultFetchTimeout}, {&c.StatusTimeout, DefaultStatusTimeout}, {&c.ContainerdTimeout, reconcile.DefaultCallTimeout},
		{&c.PullTimeout, reconcile.DefaultPullTimeout}, {&c.BundleTimeout, DefaultBundleTimeout}} {
		if d.v.Duration <= 0 {
			d.v.Duration = d.def
		}
	}
}

// Validate checks the configuration and fills derived values.
func (c *Config) Validate() error {
	var errs []error
	if c.Node == "" {
		errs = append(errs, errors.New("node name is required (--node)"))
	}
	if _, err := scheduler.ParsePolicy(c.SchedulerPolicy); err != nil {
		errs = append(errs, err)
	}
	if len(c.Repo) == 0 {
		errs = append(errs, errors.New("repository URL is required (--repo)"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required (--data-dir)"))
	}
	if c.Poll.Duration <= 0 {
		errs = append(errs, errors.New("poll interval must be positive"))
	}
	if c.Gossip != "" && c.GossipKeyFile == "" && !c.InsecureGossip {
		errs = append(errs, errors.New("--gossip needs --gossip-key-file (or --insecure-gossip)"))
	}
	switch c.Verify {
	case "", git.VerifyOff:
	case git.VerifyHead, git.VerifyAll:
		if c.TrustedKeysFile == "" && c.AllowedSignersFile == "" {
			errs = append(errs, fmt.Errorf("--verify %s needs --trusted-keys or --allowed-signers", c.Verify))
		}
	default:
		errs = append(errs, fmt.Errorf("--verify %q: want off, head or all", c.Verify))
	}
	if c.StatusPoll.Duration <= 0 {
		c.StatusPoll.Duration = 10 * time.Second
	}
	if c.Resync.Duration <= 0 {
		c.Resync.Duration = 10 * time.Second
	}
	c.fillDeadlines()
	for k, v := range c.Capacity {
		if k != "cpu" && k != "memory" {
			errs = append(errs, fmt.Errorf("capacity %q: only cpu and memory", k))
		} else if _, err := resource.ParseQuantity(v); err != nil {
			errs = append(errs, fmt.Errorf("capacity %s=%q: not a quantity", k, v))
		}
	}
	if _, err := containerlog.ParseSize(c.LogMaxSize); err != nil {
		errs = append(errs, fmt.Errorf("--log-max-size: %w", err))
	}
	if c.LogMaxFiles < 1 {
		errs = append(errs, fmt.Errorf("--log-max-files %d: must be at least 1", c.LogMaxFiles))
	}
	if c.CNIConfDir == "" {
		if _, err := c.ServiceConfig(); err != nil {
			errs = append(errs, err)
		}
		if _, err := c.PodNetworkConfig(); err != nil {
			errs = append(errs, err)
		}
		switch c.ServiceProxy {
		case "iptables", "off":
		default:
			errs = append(errs, fmt.Errorf("--service-proxy: %q: want iptables or off", c.ServiceProxy))
		}
		if c.DNSListen != "off" {
			if _, _, err := net.SplitHostPort(c.DNSListen); err != nil {
				errs = append(errs, fmt.Errorf("--dns-listen: %w", err))
			}
		}
		if c.NodeIP != "" {
			if a, err := netip.ParseAddr(c.NodeIP); err != nil || !a.Is4() {
				errs = append(errs, fmt.Errorf("--node-ip: %q: want an IPv4 address", c.NodeIP))
			}
		}
		if msgs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--cluster-domain: %q: %s", c.ClusterDomain, strings.Join(msgs, "; ")))
		}
		if _, err := cni.ParsePodCIDR(c.PodCIDR); err != nil {
			errs = append(errs, fmt.Errorf("--pod-cidr: %w", err))
		}
	}
	if c.CNIBinDir == "" {
		c.CNIBinDir = cni.DefaultBinDir()
	}
	if len(c.StatusRepo) == 0 {
		c.StatusRepo = URLList{c.Repo.Primary()}
	}
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if c.VolumesDir == "" {
		c.VolumesDir = filepath.Join(c.DataDir, "volumes")
	}
	if abs, err := filepath.Abs(c.VolumesDir); err == nil {
		c.VolumesDir = abs
	}
	return errors.Join(errs...)
}

// ServiceConfig is the Service address range and cluster DNS address.
func (c *Config) ServiceConfig() (services.Config, error) {
	p, err := netip.ParsePrefix(c.ServiceCIDR)
	if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
		return services.Config{}, fmt.Errorf("--service-cidr: %q: want an IPv4 range of at least 16 addresses (10.96.0.0/16)", c.ServiceCIDR)
	}
	out := services.Config{CIDR: p.Masked(), ClusterDNS: services.DNSAddr(p)}
	if c.ClusterDNS != "" {
		a, err := netip.ParseAddr(c.ClusterDNS)
		if err != nil || !a.Is4() {
			return services.Config{}, fmt.Errorf("--cluster-dns: %q: want an IPv4 address", c.ClusterDNS)
		}
		out.ClusterDNS = a
	}
	return out, nil
}

// PodNetworkConfig is the cluster CIDR cut into node subnets (invalid
// ClusterCIDR when none is set).
func (c *Config) PodNetworkConfig() (leader.PodNetwork, error) {
	switch c.PodNetwork {
	case "host-gw", "vxlan":
	default:
		return leader.PodNetwork{}, fmt.Errorf("--pod-network: %q: want host-gw or vxlan", c.PodNetwork)
	}
	if c.ClusterCIDR == "" {
		return leader.PodNetwork{}, nil
	}
	p, err := netip.ParsePrefix(c.ClusterCIDR)
	if err != nil || !p.Addr().Is4() {
		return leader.PodNetwork{}, fmt.Errorf("--cluster-cidr: %q: want an IPv4 range (10.244.0.0/16)", c.ClusterCIDR)
	}
	if c.NodeCIDRSize < p.Bits() || c.NodeCIDRSize > 28 {
		return leader.PodNetwork{}, fmt.Errorf("--node-cidr-size: %d: want between the cluster CIDR's /%d and /28", c.NodeCIDRSize, p.Bits())
	}
	return leader.PodNetwork{ClusterCIDR: p.Masked(), NodeBits: c.NodeCIDRSize}, nil
}
