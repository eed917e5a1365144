package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"driftless.dev/driftless/agent"
	"driftless.dev/driftless/sources/git"
)

func runAgent(args []string, _ io.Writer, stderr io.Writer) int {
	cfg := agent.DefaultConfig()
	// First pass: find --config, so that flags can override the file.
	if path := findFlag(args, "config"); path != "" {
		if err := agent.LoadConfigFile(path, &cfg); err != nil {
			fmt.Fprintln(stderr, "driftless agent:", err)
			return 2
		}
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "YAML config file (flags override it)")
	fs.StringVar(&cfg.Node, "node", cfg.Node, "this node's name")
	labels := fs.String("labels", "", "node labels, k=v,k=v")
	capacity := fs.String("capacity", "", "capacity offered to the scheduler, cpu=2,memory=4Gi (default: the host's)")
	fs.Var(&cfg.Repo, "repo", "desired-state repository URL (file://, git://, ssh://, https://); several, comma-separated, are tried in order")
	fs.StringVar(&cfg.Branch, "branch", cfg.Branch, "branch to follow")
	fs.StringVar(&cfg.Ref, "ref", cfg.Ref, "tag or commit to pin instead of following --branch")
	fs.StringVar(&cfg.Path, "path", cfg.Path, "sub-directory of the repository holding the manifests")
	fs.StringVar(&cfg.Verify, "verify", cfg.Verify, "commit signature policy: off, head or all")
	fs.StringVar(&cfg.TrustedKeysFile, "trusted-keys", cfg.TrustedKeysFile, "armored OpenPGP public keys trusted to sign desired commits")
	fs.StringVar(&cfg.AllowedSignersFile, "allowed-signers", cfg.AllowedSignersFile, "ssh-keygen allowed_signers file: SSH keys trusted to sign desired commits")
	fs.StringVar(&cfg.NodeKeyFile, "node-key", cfg.NodeKeyFile, "SSH private key signing this node's status commits (default DATA_DIR/node-key, generated)")
	fs.BoolVar(&cfg.AllowNonFastForward, "allow-non-fast-forward", cfg.AllowNonFastForward, "accept a head that does not descend from the commit in force (force push, rollback)")
	fs.StringVar(&cfg.AgeIdentityFile, "age-identity", cfg.AgeIdentityFile, "age identity file (or SSH private key) decrypting sealed Secrets")
	fs.BoolVar(&cfg.RequireSealedSecrets, "require-sealed-secrets", cfg.RequireSealedSecrets, "refuse a desired commit holding a plain (unsealed) Secret")
	fs.StringVar(&cfg.BundleInbox, "bundle-inbox", cfg.BundleInbox, "directory watched for git bundles to import (air-gapped sites)")
	authFlags(fs, &cfg.Auth)
	fs.StringVar(&cfg.StatusRepo, "status-repo", cfg.StatusRepo, "repository of the status branch (default: --repo)")
	fs.StringVar(&cfg.StatusBranch, "status-branch", cfg.StatusBranch, "status branch")
	fs.DurationVar(&cfg.StatusInterval.Duration, "status-interval", cfg.StatusInterval.Duration, "at most one status commit per interval")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for clones, logs, volumes and state")
	fs.StringVar(&cfg.ContainerdAddress, "containerd-address", cfg.ContainerdAddress, "containerd socket")
	fs.StringVar(&cfg.Namespace, "namespace", cfg.Namespace, "containerd namespace owned by the agent")
	fs.StringVar(&cfg.ImagesDir, "images-dir", cfg.ImagesDir, "directory of OCI image archives to import")
	fs.StringVar(&cfg.RegistryConfigFile, "registry-config", cfg.RegistryConfigFile, "YAML file of registry mirrors, rewrites, credential files and insecure hosts for image pulls")
	fs.StringVar(&cfg.LogMaxSize, "log-max-size", cfg.LogMaxSize, "rotate a container's log file before it grows beyond this size (10Mi)")
	fs.IntVar(&cfg.LogMaxFiles, "log-max-files", cfg.LogMaxFiles, "log files kept per container, the current one included")
	fs.StringVar(&cfg.CNIBinDir, "cni-bin-dir", cfg.CNIBinDir, "directory of the CNI plugins (default: the first of /opt/cni/bin and /usr/lib/cni that exists)")
	fs.StringVar(&cfg.CNIConfDir, "cni-conf-dir", cfg.CNIConfDir, "directory of the user's CNI network configuration (default: the agent's own bridge network)")
	fs.StringVar(&cfg.PodCIDR, "pod-cidr", cfg.PodCIDR, "IPv4 subnet of the agent's own network (bridge driftless0)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTP API address (health, status)")
	fs.StringVar(&cfg.WebhookSecretFile, "webhook-secret-file", cfg.WebhookSecretFile, "secret of POST /hooks/git (GitHub, Gitea, GitLab, X-Driftless-Signature); off without it")
	fs.DurationVar(&cfg.Poll.Duration, "poll", cfg.Poll.Duration, "poll interval of the desired repository")
	fs.DurationVar(&cfg.Resync.Duration, "resync", cfg.Resync.Duration, "longest time between two reconcile passes")
	fs.DurationVar(&cfg.FetchTimeout.Duration, "fetch-timeout", cfg.FetchTimeout.Duration, "deadline of one fetch of the desired repository")
	fs.DurationVar(&cfg.StatusTimeout.Duration, "status-timeout", cfg.StatusTimeout.Duration, "deadline of one read or commit of the status branch")
	fs.DurationVar(&cfg.ContainerdTimeout.Duration, "containerd-timeout", cfg.ContainerdTimeout.Duration, "deadline of one containerd call (a stop gets its grace period on top)")
	fs.DurationVar(&cfg.PullTimeout.Duration, "pull-timeout", cfg.PullTimeout.Duration, "deadline of one image pull or import")
	fs.DurationVar(&cfg.BundleTimeout.Duration, "bundle-timeout", cfg.BundleTimeout.Duration, "deadline of one git bundle import")
	fs.StringVar(&cfg.Gossip, "gossip", cfg.Gossip, "gossip address ip:port (empty: standalone, a cluster of one)")
	join := fs.String("join", strings.Join(cfg.Join, ","), "seed nodes ip:port,... (retried in the background)")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key-file", cfg.GossipKeyFile, "file with the base64 gossip encryption key (16/24/32 bytes)")
	fs.BoolVar(&cfg.InsecureGossip, "insecure-gossip", cfg.InsecureGossip, "gossip without encryption")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", cfg.BootstrapExpect, "a new cluster elects its first leader once this many nodes are alive")
	fs.DurationVar(&cfg.NodeGrace.Duration, "node-grace", cfg.NodeGrace.Duration, "how long a dead node keeps its replicas")
	fs.DurationVar(&cfg.StatusPoll.Duration, "status-poll", cfg.StatusPoll.Duration, "follower's fallback poll of the status branch")
	fs.StringVar(&cfg.SchedulerPolicy, "scheduler-policy", cfg.SchedulerPolicy, "how the leader ranks nodes: least-allocated (spread) or most-allocated (pack)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "driftless agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *join != "" {
		cfg.Join = nil
		for _, j := range strings.Split(*join, ",") {
			if j = strings.TrimSpace(j); j != "" {
				cfg.Join = append(cfg.Join, j)
			}
		}
	}
	cfg.Version = version
	if *capacity != "" {
		c, err := parseLabels(*capacity)
		if err != nil {
			fmt.Fprintln(stderr, "driftless agent: --capacity:", err)
			return 2
		}
		cfg.Capacity = c
	}
	if *labels != "" {
		l, err := parseLabels(*labels)
		if err != nil {
			fmt.Fprintln(stderr, "driftless agent: --labels:", err)
			return 2
		}
		cfg.Labels = l
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(stderr, "driftless agent: --log-level:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "driftless agent:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if v := os.Getenv(agent.ClockRateEnv); v != "" {
		rate, err := strconv.ParseFloat(v, 64)
		if err != nil || rate < 1 {
			fmt.Fprintf(stderr, "driftless agent: %s=%q: want a number >= 1\n", agent.ClockRateEnv, v)
			return 2
		}
		cfg.ClockRate = rate
		log.Warn("test clock: Jobs and CronJobs run on a clock faster than real time", "rate", rate)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := agent.Run(ctx, cfg, log); err != nil {
		log.Error("agent failed", "err", err)
		return 1
	}
	return 0
}

// findFlag returns the value of -name/--name in args without parsing the
// others.
func findFlag(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, p+"=") {
				return strings.TrimPrefix(a, p+"=")
			}
		}
	}
	return ""
}

func parseLabels(s string) (map[string]string, error) {
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

// authFlags binds the credential-file flags every command that reads a
// repository takes; defaults are a's current values.
func authFlags(fs *flag.FlagSet, a *git.Auth) {
	fs.StringVar(&a.SSHKeyFile, "ssh-key", a.SSHKeyFile, "SSH private key file for ssh:// remotes")
	fs.StringVar(&a.KnownHostsFile, "known-hosts", a.KnownHostsFile, "known_hosts file for ssh:// remotes")
	fs.StringVar(&a.TokenFile, "token-file", a.TokenFile, "file holding a token for https:// remotes")
	fs.StringVar(&a.BasicAuthFile, "basic-auth-file", a.BasicAuthFile, "file holding user:password for https:// remotes")
}
