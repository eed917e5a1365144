package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/distribution/reference"
	"github.com/fsnotify/fsnotify"

	"driftless.dev/driftless/internal/fswatch"
)

// errDigestMismatch: an image is referenced by digest and the archives
// hold that repository under other content, or content that does not
// hash to its digest.
var errDigestMismatch = errors.New("image digest mismatch")

// byDigest resolves "repo@sha256:..." against what was imported: an
// archive names its images by tag, so an image whose manifest has that
// digest is looked for, its manifest read back from the content store
// and hashed, and only when the hash matches is the digested name
// recorded for it. Returns a not-found error when no image has the
// digest, errDigestMismatch when the content does not match.
func (r *Runtime) byDigest(ctx context.Context, name string) (containerd.Image, error) {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, err
	}
	dref, ok := ref.(reference.Digested)
	if !ok {
		return nil, fmt.Errorf("image %s: %w", name, errdefs.ErrNotFound)
	}
	want := dref.Digest()
	repo := reference.TrimNamed(ref).Name()
	list, err := r.client.ImageService().List(ctx)
	if err != nil {
		return nil, wrap("list images", err)
	}
	var sameRepo []string
	for _, im := range list {
		if strings.Contains(im.Name, "@") {
			continue
		}
		n, err := reference.ParseNormalizedNamed(im.Name)
		if err != nil {
			continue
		}
		if reference.TrimNamed(n).Name() == repo && im.Target.Digest != want {
			sameRepo = append(sameRepo, im.Name+"@"+im.Target.Digest.String())
		}
		if im.Target.Digest != want {
			continue
		}
		b, err := content.ReadBlob(ctx, r.client.ContentStore(), im.Target)
		if err != nil {
			return nil, wrap("read manifest of "+im.Name, err)
		}
		if got := want.Algorithm().FromBytes(b); got != want {
			return nil, fmt.Errorf("%w: %s: the stored manifest hashes to %s", errDigestMismatch, name, got)
		}
		rec := images.Image{Name: name, Target: im.Target, Labels: im.Labels}
		if _, err := r.client.ImageService().Create(ctx, rec); err != nil && !errdefs.IsAlreadyExists(err) {
			return nil, wrap("record "+name, err)
		}
		r.log.Info("image verified by digest", "image", name, "from", im.Name)
		return r.client.GetImage(ctx, name)
	}
	if len(sameRepo) > 0 {
		return nil, fmt.Errorf("%w: %s: the archives hold %s", errDigestMismatch, name, strings.Join(sameRepo, ", "))
	}
	return nil, fmt.Errorf("image %s: %w", name, errdefs.ErrNotFound)
}

// WatchImages imports the archives that appear in ImagesDir (created or
// renamed in; debounced by 250 ms, so a copy in progress is read once it
// stops changing) and signals after each import that brought something
// new, so that replicas waiting for an image start without waiting for
// their back-off. A nil channel when there is no ImagesDir. The files are
// also read when an image is missing, as before.
func (r *Runtime) WatchImages(ctx context.Context) (<-chan struct{}, error) {
	dir := r.cfg.ImagesDir
	if dir == "" {
		return nil, nil
	}
	archive := func(ev fsnotify.Event) bool {
		base := filepath.Base(ev.Name)
		if strings.HasPrefix(base, ".") || !strings.HasSuffix(base, ".tar") || ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) == 0 {
			return false
		}
		if ev.Op&fsnotify.Rename != 0 {
			if _, err := os.Stat(ev.Name); err != nil {
				return false // renamed away
			}
		}
		return true
	}
	changed, err := fswatch.Dir(ctx, dir, 250*time.Millisecond, archive, func(err error) {
		r.log.Warn("images dir watch", "dir", dir, "err", err)
	})
	if err != nil {
		return nil, fmt.Errorf("images dir: %w", err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		for range changed {
			r.importMu.Lock()
			n, err := r.importArchives(r.ctx(ctx))
			r.importMu.Unlock()
			if err != nil {
				r.log.Warn("import image archives", "dir", dir, "err", err)
			}
			if n > 0 {
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}
