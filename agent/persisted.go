package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"driftless.dev/driftless/internal/atomicfile"
)

// persisted is the agent's own memory across restarts: the last good
// desired commit, so that a node comes back with what it ran even when Git
// is unreachable.
type persisted struct {
	InForce  string `json:"inForce,omitempty"`
	LastSeen string `json:"lastSeen,omitempty"`
	Rejected string `json:"rejected,omitempty"`
	// Following is what the commit in force was taken from (branch or
	// ref), so that a change of it is not taken for a force push.
	Following string `json:"following,omitempty"`
}

func loadPersisted(path string) (persisted, error) {
	var p persisted
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return persisted{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// savePersisted writes atomically (internal/atomicfile) so a crash never
// leaves a half-written file.
func savePersisted(path string, p persisted) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}
