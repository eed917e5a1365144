package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/reconcile"
	ctrd "driftless.dev/driftless/reconcile/containerd"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// Run wires the real parts (go-git clones under the data dir, the status
// branch, containerd) and runs the agent until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	src, err := git.Open(ctx, git.Config{
		URL:    cfg.Repo,
		Branch: cfg.Branch,
		Ref:    cfg.Ref,
		Dir:    filepath.Join(cfg.DataDir, "git", "desired"),
		Auth:   cfg.Auth,
	})
	if err != nil {
		return fmt.Errorf("desired repository: %w", err)
	}
	st, err := status.Open(ctx, status.Config{
		URL:         cfg.StatusRepo,
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
	var rt *ctrd.Runtime
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		rt, err = ctrd.New(ctx, ctrd.Config{
			Address:   cfg.ContainerdAddress,
			Namespace: cfg.Namespace,
			ImagesDir: cfg.ImagesDir,
			Logger:    log.With("subsystem", "containerd"),
		})
		if err == nil {
			break
		}
		log.Warn("containerd unavailable; retrying", "address", cfg.ContainerdAddress, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	defer rt.Close()

	rec, err := reconcile.New(reconcile.Config{
		Node:    cfg.Node,
		DataDir: cfg.DataDir,
		Runtime: rt,
		Logger:  log.With("subsystem", "reconcile"),
	})
	if err != nil {
		return err
	}
	defer rec.Close()
	deps := Deps{Source: src, Status: st, Reconciler: rec}
	if cfg.TrustedKeysFile != "" {
		if deps.KeyRing, err = git.LoadKeyRing(cfg.TrustedKeysFile); err != nil {
			return err
		}
	}
	if ch, err := src.Watch(ctx); err != nil {
		log.Warn("cannot watch the local repository; polling only", "err", err)
	} else if ch != nil {
		deps.SourceChanged = ch
		log.Info("watching the local repository for pushes", "path", git.LocalPath(cfg.Repo))
	}
	if cfg.Gossip != "" {
		var key []byte
		if cfg.GossipKeyFile != "" {
			if key, err = cluster.LoadKeyFile(cfg.GossipKeyFile); err != nil {
				return err
			}
		}
		a := New(cfg, log, deps)
		cl, err := cluster.Start(ctx, cluster.Config{
			NodeName: cfg.Node, BindAddr: cfg.Gossip, Join: cfg.Join, SecretKey: key,
			Insecure: cfg.InsecureGossip, Meta: a.meta(), Logger: log.With("subsystem", "gossip"),
		})
		if err != nil {
			return err
		}
		defer func() {
			_ = cl.Leave(2 * time.Second)
			_ = cl.Shutdown()
		}()
		deps.Cluster = cl
		log.Info("gossip started", "addr", cl.LocalAddr(), "join", cfg.Join)
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
	log.Info("agent starting", "node", cfg.Node, "repo", cfg.Repo, "branch", cfg.Branch, "path", cfg.Path,
		"statusBranch", cfg.StatusBranch, "namespace", cfg.Namespace, "dataDir", cfg.DataDir)
	return New(cfg, log.With("subsystem", "agent"), deps).Run(ctx)
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
