package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/internal/fswatch"
	"driftless.dev/driftless/internal/peerauth"
)

// keySetter is the part of the cluster that takes a new keyring.
type keySetter interface {
	SetKeys(keys [][]byte) error
	KeyIDs() []string
}

// tokenFollower gives the peer listener the tokens of every key ring
// the cluster takes.
type tokenFollower struct {
	keySetter
	tokens *peerauth.Tokens
}

func (f tokenFollower) SetKeys(keys [][]byte) error {
	if err := f.keySetter.SetKeys(keys); err != nil {
		return err
	}
	if f.tokens != nil {
		f.tokens.Set(cluster.PeerTokens(keys))
	}
	return nil
}

// reloadKeys re-reads the gossip key file when it changes (written in
// place or replaced by rename, as editors and config tools do; debounced)
// or when reload fires (SIGHUP), and installs its keys: the first one
// encrypts, all decrypt. A file that does not parse is logged and the
// keys in use are kept. Runs until ctx ends.
func reloadKeys(ctx context.Context, path string, cl keySetter, reload <-chan os.Signal, log *slog.Logger) {
	base := filepath.Base(path)
	changed, err := fswatch.Dir(ctx, filepath.Dir(path), 200*time.Millisecond,
		func(ev fsnotify.Event) bool { return filepath.Base(ev.Name) == base }, nil)
	if err != nil {
		log.Warn("cannot watch the gossip key file; reload with SIGHUP", "err", err)
	}
	apply := func(why string) {
		keys, err := cluster.LoadKeyFile(path)
		if err != nil {
			log.Error("gossip keys not reloaded; keeping the keys in use", "why", why, "err", err)
			return
		}
		if err := cl.SetKeys(keys); err != nil {
			log.Error("gossip keys not reloaded", "why", why, "err", err)
			return
		}
		log.Info("gossip keys reloaded", "why", why, "keys", cl.KeyIDs())
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changed:
			if !ok {
				changed = nil
				continue
			}
			apply("file changed")
		case <-reload:
			apply("SIGHUP")
		}
	}
}
