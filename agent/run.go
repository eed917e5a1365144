package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/clusterdns"
	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/internal/backoff"
	"driftless.dev/driftless/internal/pause"
	"driftless.dev/driftless/internal/peerauth"
	"driftless.dev/driftless/internal/sealed"
	"driftless.dev/driftless/metrics"
	"driftless.dev/driftless/netproxy"
	"driftless.dev/driftless/podnet"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/reconcile/cni"
	ctrd "driftless.dev/driftless/reconcile/containerd"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes/local"
)

// maxSigningKeyLine bounds the node's public key as published in gossip
// metadata (512 bytes in all): ed25519 and ECDSA keys fit, RSA keys do not.
const maxSigningKeyLine = 256

// Run wires the real parts (go-git clones under the data dir, the status
// branch, containerd) and runs the agent until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	src, err := git.Open(ctx, git.Config{
		URL:     cfg.Repo.Primary(),
		Mirrors: cfg.Repo[1:],
		Branch:  cfg.Branch,
		Ref:     cfg.Ref,
		Dir:     filepath.Join(cfg.DataDir, "git", "desired"),
		Auth:    cfg.Auth,
	})
	if err != nil {
		return fmt.Errorf("desired repository: %w", err)
	}
	// The node key signs status commits; without --node-key one is made
	// in the data dir on first start.
	keyFile, create := cfg.NodeKeyFile, false
	if keyFile == "" {
		keyFile, create = filepath.Join(cfg.DataDir, "node-key"), true
	}
	nodeKey, err := status.LoadNodeKey(keyFile, create)
	if err != nil {
		return err
	}
	if n := len(status.PublicKeyLine(nodeKey.PublicKey())); n > maxSigningKeyLine {
		return fmt.Errorf("node key %s: its public key is %d bytes; gossip metadata allows %d: use an ed25519 or ECDSA key", keyFile, n, maxSigningKeyLine)
	}
	log.Info("status commits signed", "key", ssh.FingerprintSHA256(nodeKey.PublicKey()), "file", keyFile)
	st, err := status.Open(ctx, status.Config{
		Signer:      nodeKey,
		URL:         cfg.StatusRepo.Primary(),
		Mirrors:     cfg.StatusRepo[1:],
		Branch:      cfg.StatusBranch,
		Dir:         filepath.Join(cfg.DataDir, "git", "status"),
		Auth:        cfg.Auth,
		AuthorName:  "driftless " + cfg.Node,
		AuthorEmail: cfg.Node + "@driftless.invalid",
	})
	if err != nil {
		return fmt.Errorf("status branch: %w", err)
	}

	// containerd may not be up yet (boot order, restart): keep trying; the
	// agent has nothing to do on this node without it.
	// The shim runs this binary as each container's log writer.
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own binary for the log writer: %w", err)
	}
	logMaxSize, err := containerlog.ParseSize(cfg.LogMaxSize)
	if err != nil {
		return fmt.Errorf("log max size: %w", err)
	}
	var registry *ctrd.RegistryConfig
	if cfg.RegistryConfigFile != "" {
		if registry, err = ctrd.LoadRegistryConfig(cfg.RegistryConfigFile); err != nil {
			return err
		}
		log.Info("image pulls configured", "file", cfg.RegistryConfigFile, "mirrored", len(registry.Mirrors), "rewrites", len(registry.Rewrites), "credentials", len(registry.Credentials))
	}
	pauseBinary := self
	if cfg.PauseBinary != "" {
		if pauseBinary, err = filepath.Abs(cfg.PauseBinary); err != nil {
			return err
		}
	}
	if err := pause.CheckStatic(pauseBinary); err != nil {
		log.Warn("replicas with shareProcessNamespace cannot run on this node", "err", err)
	}
	var rt *ctrd.Runtime
	retry := backoff.Backoff{Base: time.Second, Max: 30 * time.Second}
	for {
		rt, err = ctrd.New(ctx, ctrd.Config{
			Address:   cfg.ContainerdAddress,
			Namespace: cfg.Namespace,
			ImagesDir: cfg.ImagesDir,
			Registry:  registry,
			Logger:    log.With("subsystem", "containerd"),

			LogWriter:   self,
			LogMaxSize:  logMaxSize,
			LogMaxFiles: cfg.LogMaxFiles,
			Pause:       []string{pauseBinary, pause.Arg},
			PauseRoot:   filepath.Join(cfg.DataDir, "pause-root"),
		})
		if err == nil {
			break
		}
		delay := retry.Next()
		log.Warn("containerd unavailable; retrying", "address", cfg.ContainerdAddress, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	defer rt.Close()

	podNet, _ := cfg.PodNetworkConfig() // checked by Config.Validate
	network, err := cni.New(cni.Config{BinDirs: []string{cfg.CNIBinDir}, ConfDir: cfg.CNIConfDir, PodCIDR: cfg.PodCIDR,
		CacheDir: filepath.Join(cfg.DataDir, "cni"), NodeSubnet: podNet.ClusterCIDR.IsValid() && cfg.CNIConfDir == "", MTU: podMTU(cfg)})
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	switch {
	case cfg.CNIConfDir != "":
		log.Info("replica network", "confDir", cfg.CNIConfDir, "plugins", cfg.CNIBinDir)
	case podNet.ClusterCIDR.IsValid():
		log.Info("replica network", "bridge", cni.DefaultBridge, "clusterCIDR", podNet.ClusterCIDR, "podNetwork", cfg.PodNetwork, "plugins", cfg.CNIBinDir)
	default:
		log.Info("replica network", "bridge", cni.DefaultBridge, "podCIDR", cfg.PodCIDR, "plugins", cfg.CNIBinDir)
	}
	keyring, err := sealed.LoadKeyring(cfg.AgeIdentityFile)
	if err != nil {
		return fmt.Errorf("sealed secrets: %w", err)
	}
	if cfg.AgeIdentityFile != "" {
		log.Info("sealed Secrets decrypted with", "identities", keyring.Len(), "file", cfg.AgeIdentityFile)
	}
	svcCfg, _ := cfg.ServiceConfig() // checked by Config.Validate
	var dnsCfg reconcile.DNSConfig
	var dnsServer *clusterdns.Server
	if cfg.DNSListen != "off" && cfg.ServiceProxy != "off" {
		if dnsServer, err = clusterdns.New(clusterdns.Config{Domain: cfg.ClusterDomain, Log: log.With("subsystem", "dns")}); err != nil {
			return err
		}
		// Another agent (or resolver) on the port: pods fall back to the
		// host's resolvers; the rest of the node runs.
		if err := dnsServer.ListenAndServe(ctx, cfg.DNSListen); err != nil {
			log.Warn("cluster DNS not served; pods get the host's resolvers", "err", err)
			dnsServer = nil
		} else {
			dnsCfg = reconcile.DNSConfig{Nameserver: svcCfg.ClusterDNS.String(), Domain: cfg.ClusterDomain}
			log.Info("cluster DNS", "listen", dnsServer.Addr(), "address", svcCfg.ClusterDNS, "domain", cfg.ClusterDomain)
		}
	}
	if dnsCfg.Domain == "" {
		dnsCfg.Domain = cfg.ClusterDomain
	}
	// The metrics' state gauges read the agent's published state at
	// scrape time; the agent exists once Run starts serving.
	var ag atomic.Pointer[Agent]
	var remotes []string
	for _, u := range cfg.Repo {
		remotes = append(remotes, git.RedactURL(u))
	}
	remotes = append(remotes, "peer")
	met := metrics.New(remotes, func() metrics.State {
		if a := ag.Load(); a != nil {
			return a.MetricsState()
		}
		return metrics.State{Node: cfg.Node}
	})
	claims, err := local.Open(cfg.VolumesDir, filepath.Join(cfg.DataDir, "volumes.json"), local.Options{Limit: cfg.VolumeSizeLimit})
	if err != nil {
		return err
	}
	rec, err := reconcile.New(reconcile.Config{
		ObservePull: met.ImagePull,
		Claims:      claims,
		Node:        cfg.Node,
		HostIP:      cfg.NodeAddr().String(),
		DNS:         dnsCfg,
		DataDir:     cfg.DataDir,
		Runtime:     rt,
		Logger:      log.With("subsystem", "reconcile"),
		Network:     network,
		Secrets:     keyring,

		CallTimeout: cfg.ContainerdTimeout.Duration,
		PullTimeout: cfg.PullTimeout.Duration,
	})
	if err != nil {
		return err
	}
	defer rec.Close()
	deps := Deps{Source: src, Status: st, Reconciler: rec, Claims: claims, Metrics: met}
	if cfg.GossipKeyFile != "" {
		if keys, err := cluster.LoadKeyFile(cfg.GossipKeyFile); err == nil {
			deps.PeerTokens = &peerauth.Tokens{}
			deps.PeerTokens.Set(cluster.PeerTokens(keys))
		}
	}
	if podNet.ClusterCIDR.IsValid() && cfg.CNIConfDir == "" {
		deps.PodSubnet, deps.PodRoutes = network, podnet.Routes{}
		if cfg.PodNetwork == "vxlan" {
			deps.PodRoutes = podnet.VXLAN{}
		}
	}
	if dnsServer != nil {
		deps.DNS = dnsServer
	}
	if cfg.ServiceProxy == "iptables" {
		if !netproxy.EnableBridgeFilter() {
			log.Warn("bridged traffic does not pass through iptables (br_netfilter): a replica reaching a Service whose endpoint shares its bridge may get no answer")
		}
		deps.Proxy = &netproxy.Proxy{}
	}
	if rate := cfg.ClockRate; rate > 1 {
		start := time.Now()
		deps.Now = func() time.Time { return start.Add(time.Duration(float64(time.Since(start)) * rate)) }
	}
	if cfg.TrustedKeysFile != "" {
		if deps.Trust.KeyRing, err = git.LoadKeyRing(cfg.TrustedKeysFile); err != nil {
			return err
		}
	}
	if cfg.AllowedSignersFile != "" {
		if deps.Trust.Signers, err = git.LoadAllowedSigners(cfg.AllowedSignersFile); err != nil {
			return err
		}
	}
	deps.NodeKey = nodeKey
	if ch, err := src.Watch(ctx); err != nil {
		log.Warn("cannot watch the local repository; polling only", "err", err)
	} else if ch != nil {
		deps.SourceChanged = ch
		log.Info("watching the local repository for pushes", "repo", cfg.Repo.String())
	}
	if cfg.WebhookSecretFile != "" {
		if deps.WebhookSecret, err = LoadWebhookSecret(cfg.WebhookSecretFile); err != nil {
			return err
		}
	}
	if cfg.BundleInbox != "" {
		in := git.Inbox{Dir: cfg.BundleInbox}
		ch, err := in.Watch(ctx)
		if err != nil {
			return err
		}
		deps.Inbox, deps.InboxChanged = in, ch
		log.Info("watching the bundle inbox", "dir", cfg.BundleInbox)
	}
	if cfg.Gossip != "" {
		var keys [][]byte
		if cfg.GossipKeyFile != "" {
			if keys, err = cluster.LoadKeyFile(cfg.GossipKeyFile); err != nil {
				return err
			}
		}
		a := New(cfg, log, deps)
		cl, err := cluster.Start(ctx, cluster.Config{
			NodeName: cfg.Node, BindAddr: cfg.Gossip, Join: cfg.Join, Keys: keys,
			Insecure: cfg.InsecureGossip, Meta: a.meta(), Logger: log.With("subsystem", "gossip"),
		})
		if err != nil {
			return err
		}
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			select {
			case err := <-cl.Fatal():
				cancel(err)
			case <-ctx.Done():
			}
		}()
		defer func() {
			// A duplicate must not announce the name it shares as gone.
			if !errors.Is(context.Cause(ctx), cluster.ErrNameInUse) {
				_ = cl.Leave(2 * time.Second)
			}
			_ = cl.Shutdown()
		}()
		deps.Cluster = cl
		log.Info("gossip started", "addr", cl.LocalAddr(), "join", cfg.Join, "keys", cl.KeyIDs())
		if cfg.GossipKeyFile != "" {
			// SIGHUP reloads the key file (as does any change to it)
			// instead of ending the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go reloadKeys(ctx, cfg.GossipKeyFile, tokenFollower{cl, deps.PeerTokens}, hup, log.With("subsystem", "gossip"))
		}
	}
	if ch, err := rt.WatchImages(ctx); err != nil {
		log.Warn("cannot watch the images dir; archives are read when an image is missing", "dir", cfg.ImagesDir, "err", err)
	} else if ch != nil {
		deps.ImagesChanged = ch
	}
	var exits <-chan string
	if ex, ok := any(rt).(reconcile.Exiter); ok {
		if ch, err := ex.Exits(ctx); err == nil {
			exits = ch
		} else {
			log.Warn("container exit events unavailable; relying on resync", "err", err)
		}
	}
	deps.Exits = mergeWakes(ctx, exits, rec.Changes())
	if cfg.Auth.InsecureSkipTLSVerify {
		log.Warn("TLS certificates of https:// remotes are NOT verified (--insecure-skip-tls-verify): anyone on the path can serve the repository or read its credentials")
	}
	log.Info("agent starting", "node", cfg.Node, "repo", cfg.Repo.String(), "branch", cfg.Branch, "path", cfg.Path,
		"statusBranch", cfg.StatusBranch, "namespace", cfg.Namespace, "dataDir", cfg.DataDir)
	a := New(cfg, log.With("subsystem", "agent"), deps)
	ag.Store(a)
	err = a.Run(ctx)
	if cause := context.Cause(ctx); errors.Is(cause, cluster.ErrNameInUse) {
		return cause
	}
	return err
}

// mergeWakes forwards container exits and probe changes (readiness, a
// liveness kill) into one channel that makes the loop run a pass.
func mergeWakes(ctx context.Context, exits <-chan string, changes <-chan struct{}) <-chan string {
	out := make(chan string, 64)
	go func() {
		for {
			var id string
			select {
			case <-ctx.Done():
				return
			case x, ok := <-exits:
				if !ok {
					exits = nil
					continue
				}
				id = x
			case <-changes:
			}
			select {
			case out <- id:
			default:
			}
		}
	}()
	return out
}

// podMTU is the MTU of replicas' interfaces: 50 bytes below 1500 for the
// VXLAN header between nodes, else the plugin's default.
func podMTU(cfg Config) int {
	if pn, _ := cfg.PodNetworkConfig(); pn.ClusterCIDR.IsValid() && cfg.PodNetwork == "vxlan" {
		return 1450
	}
	return 0
}
