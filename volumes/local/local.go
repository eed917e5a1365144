// Package local keeps the directories of the claims bound to this node,
// as a node-local provisioner does: one directory per binding under the
// volumes directory, created on first use and never re-created empty
// behind the user's back. A ledger in the agent's data directory lists
// every directory this node created, so a volumes directory that went
// missing (a disk not mounted after a reboot, a wiped path) is reported
// instead of silently replaced by an empty one.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"driftless.dev/driftless/internal/atomicfile"
	"driftless.dev/driftless/volumes"
)

// Dirs provisions and finds claim directories. Safe for concurrent use.
type Dirs struct {
	root   string
	ledger string
	limit  string // "" or LimitLoop

	mu      sync.Mutex
	created map[string]entry
}

type entry struct {
	Claim   string    `json:"claim"`
	Created time.Time `json:"created"`
	// Image is the claim's file system image (relative to the volumes
	// directory) when its size is enforced (LimitLoop); Size its size.
	Image string `json:"image,omitempty"`
	Size  int64  `json:"size,omitempty"`
}

// Options says how claims are provisioned.
type Options struct {
	// Limit enforces claim sizes: "" records them only, LimitLoop gives
	// each claim with a size a file system of that size.
	Limit string
}

// Open reads the ledger (a missing one is empty) of the claim
// directories under root.
func Open(root, ledger string, opts ...Options) (*Dirs, error) {
	d := &Dirs{root: root, ledger: ledger, created: map[string]entry{}}
	for _, o := range opts {
		switch o.Limit {
		case "", "off":
		case LimitLoop:
			d.limit = LimitLoop
		default:
			return nil, fmt.Errorf("volume size limit %q: want off or %s", o.Limit, LimitLoop)
		}
	}
	b, err := os.ReadFile(ledger)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("volumes ledger: %w", err)
	default:
		if err := json.Unmarshal(b, &d.created); err != nil {
			return nil, fmt.Errorf("volumes ledger %s: %w", ledger, err)
		}
	}
	return d, nil
}

// Root is the volumes directory.
func (d *Dirs) Root() string { return d.root }

// Dir returns the directory of a binding, creating it on first use.
// A directory this node created before and that is gone now is an
// error: its data is missing, and an empty one would hide that.
func (d *Dirs) Dir(b volumes.Binding) (string, error) {
	name := b.Claim.Namespace + "/" + b.Claim.Name
	if b.Node == "" {
		return shared(b, name)
	}
	if filepath.IsAbs(b.Path) || strings.Contains(b.Path, "..") || b.Path == "" {
		return "", fmt.Errorf("claim %s: bad path %q in its binding", name, b.Path)
	}
	p := filepath.Join(d.root, filepath.FromSlash(b.Path))
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, known := d.created[b.Path]; known {
		if e.Image != "" {
			// A claim with its own file system: mounted again after a
			// reboot; an image gone missing is missing data.
			img := filepath.Join(d.root, e.Image)
			if _, err := os.Stat(img); err != nil {
				return "", fmt.Errorf("claim %s: its data is missing: image %s: %v; not re-created empty", name, img, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), mountTimeout)
			defer cancel()
			if err := mountImage(ctx, img, p); err != nil {
				return "", fmt.Errorf("claim %s: %w", name, err)
			}
		}
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("claim %s: its data is missing: %s does not exist (is the volumes directory mounted?); not re-created empty", name, p)
		case err != nil:
			return "", fmt.Errorf("claim %s: %w", name, err)
		case !fi.IsDir():
			return "", fmt.Errorf("claim %s: %s is not a directory", name, p)
		}
		if err := unix.Access(p, unix.W_OK); err != nil {
			return "", fmt.Errorf("claim %s: %s is not writable: %w", name, p, err)
		}
		return p, nil
	}
	if err := os.MkdirAll(d.root, 0o755); err != nil {
		return "", fmt.Errorf("claim %s: volumes directory: %w", name, err)
	}
	if err := unix.Access(d.root, unix.W_OK); err != nil {
		return "", fmt.Errorf("claim %s: volumes directory %s is not writable: %w", name, d.root, err)
	}
	e := entry{Claim: name, Created: time.Now().UTC()}
	size, err := sizeOf(b.Storage)
	if err != nil {
		return "", fmt.Errorf("claim %s: %w", name, err)
	}
	if d.limit == LimitLoop && size > 0 {
		e.Image, e.Size = imagePath(b.Path), size
		img := filepath.Join(d.root, e.Image)
		ctx, cancel := context.WithTimeout(context.Background(), mountTimeout)
		defer cancel()
		// An image left by a create cut short holds nothing yet.
		_ = os.Remove(img)
		if err := makeImage(ctx, img, size); err != nil {
			return "", fmt.Errorf("claim %s: %w", name, err)
		}
		if err := mountImage(ctx, img, p); err != nil {
			_ = os.Remove(img)
			return "", fmt.Errorf("claim %s: %w", name, err)
		}
	} else {
		if err := os.MkdirAll(p, 0o777); err != nil {
			return "", fmt.Errorf("claim %s: %w", name, err)
		}
		// As local-path provisioners do: any user of the replica may write.
		if err := os.Chmod(p, 0o777); err != nil {
			return "", fmt.Errorf("claim %s: %w", name, err)
		}
	}
	d.created[b.Path] = e
	if err := d.save(); err != nil {
		delete(d.created, b.Path)
		return "", fmt.Errorf("claim %s: %w", name, err)
	}
	return p, nil
}

// Created lists the directories this node created, relative to the
// volumes directory.
func (d *Dirs) Created() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.created))
	for p := range d.created {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (d *Dirs) save() error {
	b, err := json.MarshalIndent(d.created, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(d.ledger), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(d.ledger, b, 0o600)
}

// shared is a claim's directory on storage every node mounts: the
// class's path must exist (it is the mount point of that storage).
func shared(b volumes.Binding, name string) (string, error) {
	if !filepath.IsAbs(b.Path) || filepath.Clean(b.Path) != b.Path {
		return "", fmt.Errorf("claim %s: bad shared path %q in its binding", name, b.Path)
	}
	root := filepath.Dir(filepath.Dir(b.Path))
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("claim %s: shared storage %s is not there on this node (not mounted?)", name, root)
	}
	if err := os.MkdirAll(b.Path, 0o777); err != nil {
		return "", fmt.Errorf("claim %s: %w", name, err)
	}
	_ = os.Chmod(b.Path, 0o777)
	return b.Path, nil
}

// Delete removes the directory of a binding whose claim is gone with
// reclaim policy Delete, and forgets it. Deleting what is not there (or
// was deleted before) is not an error.
func (d *Dirs) Delete(b volumes.Binding) error {
	if b.Node == "" || filepath.IsAbs(b.Path) || strings.Contains(b.Path, "..") || b.Path == "" {
		return fmt.Errorf("claim %s/%s: refusing to delete %q", b.Claim.Namespace, b.Claim.Name, b.Path)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := filepath.Join(d.root, filepath.FromSlash(b.Path))
	if e, ok := d.created[b.Path]; ok && e.Image != "" {
		if err := unmountImage(p, filepath.Join(d.root, e.Image)); err != nil {
			return fmt.Errorf("claim %s/%s: %w", b.Claim.Namespace, b.Claim.Name, err)
		}
	}
	if isMounted(p) {
		return fmt.Errorf("claim %s/%s: %s is a mount point: not deleted", b.Claim.Namespace, b.Claim.Name, p)
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("claim %s/%s: %w", b.Claim.Namespace, b.Claim.Name, err)
	}
	if _, known := d.created[b.Path]; !known {
		return nil
	}
	delete(d.created, b.Path)
	return d.save()
}
