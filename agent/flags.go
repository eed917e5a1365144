package agent

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// RegisterFlags registers every setting of c as a flag of fs, each
// defaulting to c's current value (so that a config file read first is
// overridden only by the flags given). The documentation of each setting
// is on its Config field. Call the returned function after fs.Parse: it
// applies the list-valued flags (--labels, --capacity, --join).
func (c *Config) RegisterFlags(fs *flag.FlagSet) func() error {
	fs.StringVar(&c.Node, "node", c.Node, "this node's name")
	labels := fs.String("labels", "", "node labels, k=v,k=v")
	capacity := fs.String("capacity", "", "capacity offered to the scheduler, cpu=2,memory=4Gi (default: the host's)")
	fs.Var(&c.Repo, "repo", "desired-state repository URL (file://, git://, ssh://, https://); several, comma-separated, are tried in order")
	fs.StringVar(&c.Branch, "branch", c.Branch, "branch to follow")
	fs.StringVar(&c.Ref, "ref", c.Ref, "tag or commit to pin instead of following --branch")
	fs.StringVar(&c.Path, "path", c.Path, "sub-directory of the repository holding the manifests")
	fs.StringVar(&c.Verify, "verify", c.Verify, "commit signature policy: off, head or all")
	fs.StringVar(&c.TrustedKeysFile, "trusted-keys", c.TrustedKeysFile, "armored OpenPGP public keys trusted to sign desired commits")
	fs.StringVar(&c.AllowedSignersFile, "allowed-signers", c.AllowedSignersFile, "ssh-keygen allowed_signers file: SSH keys trusted to sign desired commits")
	fs.StringVar(&c.NodeKeyFile, "node-key", c.NodeKeyFile, "SSH private key signing this node's status commits (default DATA_DIR/node-key, generated)")
	fs.BoolVar(&c.AllowNonFastForward, "allow-non-fast-forward", c.AllowNonFastForward, "accept a head that does not descend from the commit in force (force push, rollback)")
	fs.StringVar(&c.AgeIdentityFile, "age-identity", c.AgeIdentityFile, "age identity file (or SSH private key) decrypting sealed Secrets")
	fs.BoolVar(&c.RequireSealedSecrets, "require-sealed-secrets", c.RequireSealedSecrets, "refuse a desired commit holding a plain (unsealed) Secret")
	fs.StringVar(&c.BundleInbox, "bundle-inbox", c.BundleInbox, "directory watched for git bundles to import (air-gapped sites)")
	c.Auth.RegisterFlags(fs)
	fs.Var(&c.StatusRepo, "status-repo", "repository of the status branch (default: --repo's first URL); several, comma-separated, are mirrors of it")
	fs.StringVar(&c.StatusBranch, "status-branch", c.StatusBranch, "status branch")
	fs.DurationVar(&c.StatusInterval.Duration, "status-interval", c.StatusInterval.Duration, "at most one status commit per interval")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for clones, logs, volumes and state")
	fs.BoolFunc("peer-fetch", "fetch new status and desired commits from the peers that announce them before the Git host (default true; =false to always ask the host)", func(v string) error {
		b, err := strconv.ParseBool(v)
		c.NoPeerFetch = !b
		return err
	})
	fs.StringVar(&c.PeerListen, "peer-listen", c.PeerListen, "address of the peer listener for other nodes and the CLI: logs, reconcile, diff (default NODE_IP:7481; off to disable)")
	fs.StringVar(&c.PauseBinary, "pause-binary", c.PauseBinary, "statically linked program holding a shared process namespace, run as PROGRAM pause (default this binary)")
	fs.StringVar(&c.VolumeSizeLimit, "volume-size-limit", c.VolumeSizeLimit, "enforce claim sizes: off (recorded, checked at binding) or loop (each claim a loop-mounted ext4 image of its size)")
	fs.StringVar(&c.VolumesDir, "volumes-dir", c.VolumesDir, "directory of the persistent volume claims bound to this node (default DATA_DIR/volumes)")
	fs.StringVar(&c.ContainerdAddress, "containerd-address", c.ContainerdAddress, "containerd socket")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "containerd namespace owned by the agent")
	fs.StringVar(&c.ImagesDir, "images-dir", c.ImagesDir, "directory of OCI image archives to import")
	fs.StringVar(&c.RegistryConfigFile, "registry-config", c.RegistryConfigFile, "YAML file of registry mirrors, rewrites, credential files and insecure hosts for image pulls")
	fs.StringVar(&c.LogMaxSize, "log-max-size", c.LogMaxSize, "rotate a container's log file before it grows beyond this size (10Mi)")
	fs.IntVar(&c.LogMaxFiles, "log-max-files", c.LogMaxFiles, "log files kept per container, the current one included")
	fs.StringVar(&c.CNIBinDir, "cni-bin-dir", c.CNIBinDir, "directory of the CNI plugins (default: the first of /opt/cni/bin and /usr/lib/cni that exists)")
	fs.StringVar(&c.CNIConfDir, "cni-conf-dir", c.CNIConfDir, "directory of the user's CNI network configuration (default: the agent's own bridge network)")
	fs.StringVar(&c.PodCIDR, "pod-cidr", c.PodCIDR, "IPv4 subnet of the agent's own network (bridge driftless0)")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "IPv4 range Service addresses are allocated from (the same on every agent)")
	fs.StringVar(&c.ClusterDNS, "cluster-dns", c.ClusterDNS, "nameserver address given to pods (default: the tenth address of --service-cidr)")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "DNS domain of Services")
	fs.StringVar(&c.DNSListen, "dns-listen", c.DNSListen, "address of this node's DNS server for its pods, or off")
	fs.StringVar(&c.ServiceProxy, "service-proxy", c.ServiceProxy, "how Services are programmed on this node: iptables or off")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "this node's address between nodes (default: the gossip address's, else the first non-loopback one)")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "one pod network across the nodes: each node gets a subnet of this IPv4 range, routed through its address (the same on every agent)")
	fs.IntVar(&c.NodeCIDRSize, "node-cidr-size", c.NodeCIDRSize, "prefix length of each node's subnet of --cluster-cidr")
	fs.StringVar(&c.PodNetwork, "pod-network", c.PodNetwork, "how nodes reach each other's pod subnets: host-gw (routes through the node addresses, the nodes on one network segment) or vxlan (a tunnel over UDP 4789)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTP API address (health, status)")
	fs.StringVar(&c.WebhookSecretFile, "webhook-secret-file", c.WebhookSecretFile, "secret of POST /hooks/git (GitHub, Gitea, GitLab, X-Driftless-Signature); off without it")
	fs.DurationVar(&c.Poll.Duration, "poll", c.Poll.Duration, "poll interval of the desired repository")
	fs.DurationVar(&c.Resync.Duration, "resync", c.Resync.Duration, "longest time between two reconcile passes")
	fs.DurationVar(&c.FetchTimeout.Duration, "fetch-timeout", c.FetchTimeout.Duration, "deadline of one fetch of the desired repository")
	fs.DurationVar(&c.StatusTimeout.Duration, "status-timeout", c.StatusTimeout.Duration, "deadline of one read or commit of the status branch")
	fs.DurationVar(&c.ContainerdTimeout.Duration, "containerd-timeout", c.ContainerdTimeout.Duration, "deadline of one containerd call (a stop gets its grace period on top)")
	fs.DurationVar(&c.PullTimeout.Duration, "pull-timeout", c.PullTimeout.Duration, "deadline of one image pull or import")
	fs.DurationVar(&c.BundleTimeout.Duration, "bundle-timeout", c.BundleTimeout.Duration, "deadline of one git bundle import")
	fs.StringVar(&c.Gossip, "gossip", c.Gossip, "gossip address ip:port (empty: standalone, a cluster of one)")
	join := fs.String("join", strings.Join(c.Join, ","), "seed nodes ip:port,... (retried in the background)")
	fs.StringVar(&c.GossipKeyFile, "gossip-key-file", c.GossipKeyFile, "file with the base64 gossip encryption key (16/24/32 bytes)")
	fs.BoolVar(&c.InsecureGossip, "insecure-gossip", c.InsecureGossip, "gossip without encryption")
	fs.IntVar(&c.BootstrapExpect, "bootstrap-expect", c.BootstrapExpect, "a new cluster elects its first leader once this many nodes are alive")
	fs.DurationVar(&c.NodeGrace.Duration, "node-grace", c.NodeGrace.Duration, "how long a dead node keeps its replicas")
	fs.DurationVar(&c.StatusPoll.Duration, "status-poll", c.StatusPoll.Duration, "follower's fallback poll of the status branch")
	fs.StringVar(&c.SchedulerPolicy, "scheduler-policy", c.SchedulerPolicy, "how the leader ranks nodes: least-allocated (spread) or most-allocated (pack)")
	return func() error {
		if *join != "" {
			c.Join = nil
			for _, j := range strings.Split(*join, ",") {
				if j = strings.TrimSpace(j); j != "" {
					c.Join = append(c.Join, j)
				}
			}
		}
		if *capacity != "" {
			m, err := ParseLabels(*capacity)
			if err != nil {
				return fmt.Errorf("--capacity: %w", err)
			}
			c.Capacity = m
		}
		if *labels != "" {
			m, err := ParseLabels(*labels)
			if err != nil {
				return fmt.Errorf("--labels: %w", err)
			}
			c.Labels = m
		}
		return nil
	}
}

// ParseLabels reads "k=v,k=v" (blank items ignored).
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}
